"""The referral code a visitor arrived with, kept in a signed cookie until they sign up.

A cookie rather than the session: remembering the referrer of an anonymous visitor must
not write a session row for every visit of a referral link.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.models import User

from .selectors import affiliate_referrer_for_code

REFERRAL_COOKIE = "referral"
REFERRAL_COOKIE_SALT = "wallets.referral"
REFERRAL_COOKIE_MAX_AGE = 30 * 24 * 3600


def referral_code_read(*, request: HttpRequest) -> str | None:
    """The code this browser was referred with; None when absent, forged or expired."""
    code = request.get_signed_cookie(
        REFERRAL_COOKIE, default=None, salt=REFERRAL_COOKIE_SALT, max_age=REFERRAL_COOKIE_MAX_AGE
    )
    return str(code) if code else None


def referral_code_remember(*, response: HttpResponse, code: str) -> None:
    response.set_signed_cookie(
        REFERRAL_COOKIE,
        code,
        salt=REFERRAL_COOKIE_SALT,
        max_age=REFERRAL_COOKIE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def referral_attribute(*, request: HttpRequest, user: User) -> None:
    """Record on a user being signed up (not saved yet) the affiliate whose link they came by."""
    code = referral_code_read(request=request)
    if code and user.referred_by_id is None:
        referrer = affiliate_referrer_for_code(code=code)
        if referrer is not None and referrer.pk != user.pk:
            user.referred_by = referrer
