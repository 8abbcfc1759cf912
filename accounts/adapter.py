from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import filter_users_by_email, filter_users_by_username
from allauth.mfa.adapter import DefaultMFAAdapter
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.language import supported_language
from accounts.services import api_key_revoke_for_password_change
from kernel.site import panel_site, site_rebase
from kernel.text import has_hidden_characters
from siteconf.selectors import site_settings


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up hooks (names others will read), e-mailed links and the failed-login throttle's key.

    The panel's adapter (panel/adapter.py) adds what the apps above accounts do at sign-up."""

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "hidden_characters": _("This contains invisible or control characters."),
    }

    # --- what the Owner chose in the panel configuration ------------------------------------
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Closed: the sign-up page says so and a posted form creates nobody.
        return site_settings().signup_open

    def email_verification_mode(self) -> str:
        """none, optional or mandatory: what allauth's EMAIL_VERIFICATION answers (accounts/apps.py)."""
        return site_settings().email_verification

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys the per-account limit by what was typed, so typing the username and
        # then the e-mail address doubled an attacker's budget. A known account is counted
        # once whatever names it; an unknown name keeps its own counter, so both get the
        # same answers (no enumeration).
        email = credentials.get("email")
        username = credentials.get("username")
        if email:
            users = filter_users_by_email(str(email), prefer_verified=True)
        elif username:
            users = list(filter_users_by_username(str(username)))
        else:
            users = []
        if len({user.pk for user in users}) == 1:
            return f"user:{users[0].pk}"
        return f"login:{str(email or username or '').strip().lower()}"

    def get_client_ip(self, request: HttpRequest) -> str:
        try:
            return super().get_client_ip(request)
        except ImproperlyConfigured:
            # Fewer X-Forwarded-For entries than TRUSTED_PROXY_COUNT: the request did not come
            # through every proxy, so its header proves nothing; count the connection's address.
            return str(request.META.get("REMOTE_ADDR") or "")

    def clean_email(self, email: str) -> str:
        # Django's address validator lets format characters such as U+202E into the domain;
        # staff read addresses in the admin, where they would show reordered.
        if has_hidden_characters(email):
            raise self.validation_error("hidden_characters")
        return super().clean_email(email)

    def clean_username(self, username: str, shallow: bool = False) -> str:
        if has_hidden_characters(username):
            raise self.validation_error("hidden_characters")
        return super().clean_username(username, shallow=shallow)

    # --- links in e-mails: from PANEL_BASE_URL, never from the request's Host header --------
    def get_reset_password_from_key_url(self, key: str) -> str:
        return site_rebase(super().get_reset_password_from_key_url(key))

    def get_email_confirmation_url(self, request: HttpRequest, emailconfirmation: Any) -> str:
        return site_rebase(super().get_email_confirmation_url(request, emailconfirmation))

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # allauth builds the other links of its mails (sign-up, password reset) from the
        # request and names the site after its host: both are moved to the configured address.
        rebased = {
            name: site_rebase(value)
            for name, value in context.items()
            if name.endswith("_url") and isinstance(value, str) and "://" in value
        }
        # In the language kept on the recipient's account (a staff action or a visitor's
        # request may run in another one); else in the request's.
        language = supported_language(getattr(context.get("user"), "language", ""))
        with translation.override(language or translation.get_language()):
            super().send_mail(
                template_prefix,
                email,
                {**context, **rebased, "current_site": panel_site(name=site_settings().panel_name)},
            )

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        # A new account keeps the language its owner signed up in (their cookie or browser).
        user = super().save_user(request, user, form, commit=False)
        user.language = supported_language(translation.get_language())
        if commit:
            user.save()
        return user

    def set_password(self, user: Any, password: str) -> None:
        # allauth's password reset, change and set all come through here.
        super().set_password(user, password)
        api_key_revoke_for_password_change(user=user)


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_issuer(self) -> str:
        # The authenticator app lists the panel under its configured name.
        return site_settings().panel_name
