"""The language a customer reads the panel in, kept on the account.

A visitor's choice lives in Django's language cookie (set_language). A signed-in customer's
choice is also stored on the account (`User.language`), and the account wins: it is applied
at login and on every request (UserLanguageMiddleware), so the choice follows the customer
to every device and survives logging out and in again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from .models import User
from .preferences import language_codes, user_set_language


def supported_language(code: str | None) -> str:
    """`code` as one of settings.LANGUAGES (`pt-BR` → `pt-br`, `es-mx` → `es`), or ""."""
    if not code:
        return ""
    try:
        variant = translation.get_supported_language_variant(code.lower())
    except LookupError:
        return ""
    return variant if variant in language_codes() else ""


def set_cookie(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's set_language (same POST fields, `language` and `next`, same cookie and
    redirect), and for a signed-in customer the choice is kept on the account."""
    response = django_set_language(request)
    language = supported_language(request.POST.get("language"))
    user = request.user
    # django_set_language sets the cookie only for a language it supports.
    stored = settings.LANGUAGE_COOKIE_NAME in response.cookies
    if language and stored and isinstance(user, User) and user.is_authenticated:
        user_set_language(user=user, language=language)
    return response


def activate_account_language(request: HttpRequest, user: Any) -> str:
    """Read the page in the account's language; returns it ("" when none was chosen)."""
    language = supported_language(getattr(user, "language", ""))
    if language:
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
    return language
