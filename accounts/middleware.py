"""Per-request account rules: the customer's time zone, and two-factor authentication for staff."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from .language import activate_account_language, set_cookie


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class TimezoneMiddleware:
    """Dates on every page are shown in the logged-in user's own time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = _zone(getattr(user, "timezone", "") or "") if user is not None and user.is_authenticated else None
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class UserLanguageMiddleware:
    """A signed-in customer reads every page in the language kept on their account, and the
    language cookie follows it (set on the response after login, or on a device whose cookie
    is older than the account's choice). After LocaleMiddleware and authentication."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            activate_account_language(request, user)
        response = self.get_response(request)
        user = getattr(request, "user", None)  # the view may have logged someone in
        language = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if (
            language
            and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language
            and settings.LANGUAGE_COOKIE_NAME not in response.cookies
        ):
            set_cookie(response, language)
        return response


def staff_mfa_satisfied(request: HttpRequest) -> bool:
    """Whether this session's staff user signed in with a second factor."""
    from allauth.account.internal.flows.login import get_authentication_records

    records = get_authentication_records(request, request.user)  # type: ignore[arg-type]
    return any(record.get("method") == "mfa" for record in records)


class StaffMFAMiddleware:
    """The admin is reached only through allauth's login (rate limits, second factor), and,
    when STAFF_REQUIRE_MFA is on, only by staff who passed a second factor in this session.

    Django's own admin login form would bypass both, so it redirects to allauth's.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        admin_root = reverse("admin:index")
        if request.path.startswith(admin_root):
            response = self._guard(request, admin_root)
            if response is not None:
                return response
        return self.get_response(request)

    def _guard(self, request: HttpRequest, admin_root: str) -> HttpResponse | None:
        if request.path == reverse("admin:login"):
            target = request.GET.get("next", admin_root)
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = admin_root
            return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': target})}")
        user = request.user
        if user.is_authenticated and not user.is_staff:
            # Django's admin would send a signed-in customer to its login page, which sends
            # them to allauth's, which sends them back here: refuse once, in the panel's layout.
            return render(request, "403.html", {"message": "The admin is for staff."}, status=403)
        if not settings.STAFF_REQUIRE_MFA or not (user.is_authenticated and user.is_staff):
            return None
        if request.path == reverse("admin:logout"):
            return None
        from allauth.mfa.utils import is_mfa_enabled

        back = urlencode({"next": request.get_full_path()})
        if not is_mfa_enabled(user):  # type: ignore[arg-type]
            messages.warning(request, _("Staff accounts need two-factor authentication: set up an authenticator app."))
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        if not staff_mfa_satisfied(request):
            messages.info(request, _("Confirm with your authenticator code to open the admin."))
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{back}")
        return None


# While staff are logged in as a customer, these pages refuse to act: money comes in only from
# the customer, and the customer's secrets (password, e-mail, two-factor, API key) stay theirs.
IMPERSONATION_REFUSED_POSTS = frozenset(
    {"wallets:add_funds", "wallets:deposit", "wallets:deposit_manual", "wallets:deposit_stripe"}
)
IMPERSONATION_REFUSED = frozenset(
    {
        "api:key_issue",
        "api:key_revoke",
        "account_change_password",
        "account_set_password",
        "account_email",
        "account_reset_password",
        "account_reset_password_from_key",
        "account_change_phone",
    }
)


class ImpersonationMiddleware:
    """Ends a "log in as" session when it expires, closes its record when the staff member logs
    out, and refuses the money and secret pages while it lasts (accounts/impersonation.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import logout
        from django.urls import Resolver404, resolve
        from django.utils.dateparse import parse_datetime
        from django.utils.translation import gettext as _

        from .impersonation import impersonation_end, impersonation_of
        from .models import Impersonation

        state = impersonation_of(request)
        if state is None:
            return self.get_response(request)
        until = parse_datetime(state.get("until") or "")
        if until is None or until <= timezone.now():
            impersonation_end(record_id=state["id"], how=Impersonation.Ended.EXPIRED)
            logout(request)
            return HttpResponseRedirect(reverse("account_login"))
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        name = match.view_name
        if name == "account_logout" and request.method == "POST":
            impersonation_end(record_id=state["id"], how=Impersonation.Ended.LOGGED_OUT)
        elif (
            name in IMPERSONATION_REFUSED
            or name.startswith("mfa_")
            or (name in IMPERSONATION_REFUSED_POSTS and request.method not in ("GET", "HEAD"))
        ):
            message = _("Not while you are logged in as a customer: return to the admin first.")
            return render(request, "403.html", {"message": message}, status=403)
        return self.get_response(request)
