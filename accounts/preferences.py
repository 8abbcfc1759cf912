"""Writes for a customer's own preferences (the account page)."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils.translation import gettext as _

from .models import User


class PreferenceError(Exception):
    """A preference that cannot be saved; the message is for the customer."""


def user_set_timezone(*, user: User, timezone_name: str) -> User:
    if timezone_name not in zoneinfo.available_timezones():
        raise PreferenceError(_("Unknown time zone: %(name)s.") % {"name": timezone_name[:64]})
    User.objects.filter(pk=user.pk).update(timezone=timezone_name)
    user.timezone = timezone_name
    return user


def language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def user_set_language(*, user: User, language: str) -> User:
    """Keep `language` (one of settings.LANGUAGES) on the account; blank forgets the choice."""
    if language and language not in language_codes():
        raise PreferenceError(_("Unknown language: %(code)s.") % {"code": language[:16]})
    if user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
    return user


def account_summary(*, user: User) -> dict[str, object]:
    """What the account page shows besides the user row: e-mail state, 2FA, API key."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator

    from .models import ApiKey

    email = EmailAddress.objects.filter(user=user, primary=True).first()
    kinds = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    return {
        "email_verified": bool(email and email.verified),
        "mfa_enabled": Authenticator.Type.TOTP in kinds,
        "recovery_codes": Authenticator.Type.RECOVERY_CODES in kinds,
        "api_key_prefix": ApiKey.objects.filter(user=user).values_list("prefix", flat=True).first(),
    }
