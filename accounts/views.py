from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .forms import TimezoneForm
from .impersonation import impersonation_of, impersonation_stop
from .preferences import PreferenceError, account_summary, user_set_timezone
from .utils import request_user


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _render_account(request: HttpRequest, form: TimezoneForm, status: int = 200) -> HttpResponse:
    user = request_user(request)
    context = {
        "form": form,
        "summary": account_summary(user=user),
        "now": timezone.now(),
        "api_url": _url("api:page"),
        "affiliates_url": _url("wallets:affiliates"),
    }
    return render(request, "account/account.html", context, status=status)


@require_GET
@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    return _render_account(request, TimezoneForm(initial={"timezone": user.timezone}))


@require_POST
@login_required
def timezone_update(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = TimezoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Your time zone was not changed."))
        return _render_account(request, form, status=400)
    try:
        user_set_timezone(user=user, timezone_name=form.cleaned_data["timezone"])
    except PreferenceError as exc:
        form.add_error("timezone", str(exc))
        return _render_account(request, form, status=400)
    messages.success(request, _("Time zone set to %(zone)s. Dates are now shown in it.") % {"zone": user.timezone})
    return redirect("accounts:account")


@require_POST
def impersonate_stop(request: HttpRequest) -> HttpResponse:
    state = impersonation_of(request)
    if state is None:
        return redirect("home")
    customer_id = request.user.pk
    staff = impersonation_stop(request=request)
    if staff is None:
        logout(request)
        return redirect("account_login")
    try:
        return redirect(reverse("admin:panel_customer", args=[customer_id]))
    except NoReverseMatch:
        return redirect("admin:index")
