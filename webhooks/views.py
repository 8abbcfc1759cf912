"""The customer's webhook pages: set the URL, see the secret once, rotate it, the delivery log
with replays. The section on the API page is templates/api/_webhooks.html."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.core import is_ratelimited

from accounts.utils import request_user
from kernel.numbers import int_or_none

from . import selectors, services
from .forms import EndpointForm


def _back() -> HttpResponse:
    return redirect(reverse("api:page") + "#webhooks")


def _secret_page(request: HttpRequest, *, secret: str, rotated: bool) -> HttpResponse:
    # Shown in this one answer only: never stored in the session, never cached.
    response = render(request, "webhooks/secret.html", {"secret": secret, "rotated": rotated})
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def endpoint_save(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter the address of your webhook receiver."))
        return _back()
    try:
        secret = services.endpoint_save(user=request_user(request), url=form.cleaned_data["url"])
    except services.WebhookError as exc:
        messages.error(request, exc.message)
        return _back()
    if secret is None:
        messages.success(request, _("Your webhook URL was saved."))
        return _back()
    return _secret_page(request, secret=secret, rotated=False)


@login_required
@require_POST
def endpoint_rotate(request: HttpRequest) -> HttpResponse:
    try:
        secret = services.endpoint_rotate(user=request_user(request))
    except services.WebhookError as exc:
        messages.error(request, exc.message)
        return _back()
    return _secret_page(request, secret=secret, rotated=True)


@login_required
@require_POST
def endpoint_delete(request: HttpRequest) -> HttpResponse:
    services.endpoint_delete(user=request_user(request))
    messages.success(request, _("Your webhook endpoint was removed: no more events are sent."))
    return _back()


@login_required
def log(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    before = int_or_none(request.GET.get("before", ""))
    deliveries = list(selectors.deliveries_for_user(user=user, before=before))
    return render(
        request,
        "webhooks/log.html",
        {
            "endpoint": selectors.endpoint_for_user(user=user),
            "deliveries": deliveries,
            "older": deliveries[-1].pk if len(deliveries) == 50 else None,
        },
    )


@login_required
@require_POST
def event_replay(request: HttpRequest, event_id: str) -> HttpResponse:
    user = request_user(request)
    event = selectors.event_get_for_user(user=user, event_id=event_id)
    if is_ratelimited(
        request,
        group="webhooks-replay",
        key=lambda _g, _r: f"user:{user.pk}",
        rate=settings.WEBHOOKS_REPLAY_RATE,
        increment=True,
    ):
        return HttpResponse(_("Too many replays at once: try again in a minute."), status=429)
    try:
        services.event_replay_request(event=event)
    except services.WebhookError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Event %(id)s is being sent again.") % {"id": event.event_id})
    return redirect("webhooks:log")
