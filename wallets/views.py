from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from kernel.money import MoneyFormatError, to_decimal
from kernel.numbers import int_or_none
from kernel.site import site_url
from siteconf.selectors import site_settings

from . import selectors, services
from .filters import EntryFilter
from .gateways.base import DepositForm, Gateway, GatewayError, Kind, SignatureError
from .gateways.registry import UnknownGateway, gateway_get
from .models import Entry
from .referral import referral_code_read, referral_code_remember
from .tables import EntryTable

logger = logging.getLogger(__name__)

ENTRIES_PER_PAGE = 50
RECENT_PAYMENTS = 20
STATUS_BADGES = {"paid": "success", "pending": "warning", "failed": "secondary", "partly_refunded": "danger"}


@dataclass(frozen=True)
class GatewayCard:
    """One gateway's card on the add-funds page."""

    config: selectors.GatewayConfig
    form: DepositForm

    @property
    def gateway(self) -> Gateway:
        return self.config.gateway


def _add_funds_page(
    request: HttpRequest, *, bound: tuple[str, DepositForm] | None = None, status: int = 200
) -> HttpResponse:
    """The page; `bound` is a gateway's form that a failed POST brings back to its card."""
    user = request.user
    payments = selectors.payment_list_for_user(user=user)[:RECENT_PAYMENTS]  # type: ignore[arg-type]
    cards = []
    for config in selectors.gateway_config_list():
        form = bound[1] if bound is not None and bound[0] == config.code else config.gateway.form_class()
        cards.append(GatewayCard(config=config, form=form))
    balance, debt = selectors.wallet_figures(user=user)
    context = {
        "balance": balance,
        "debt": debt,
        "cards": cards,
        "tiers": selectors.bonus_tier_list(),
        "payments": [(payment, STATUS_BADGES.get(payment.status, "info")) for payment in payments],
    }
    response = render(request, "wallets/add_funds.html", context, status=status)
    # The deposit forms redirect to the gateways' checkout pages (see SecurityHeadersMiddleware).
    response.form_action_origins = sorted(  # type: ignore[attr-defined]
        {origin for card in cards if card.config.enabled for origin in card.gateway.checkout_origins()}
    )
    return response


def _returned(request: HttpRequest, *, gateway: str, reference: str) -> None:
    """The customer is back from a gateway's page that hands the payment's reference back."""
    try:
        payment = services.payment_return(user=request.user, gateway=gateway, reference=reference)  # type: ignore[arg-type]
    except (GatewayError, services.WalletError) as exc:
        logger.warning("%s return for %s not applied: %s", gateway, reference, exc)
        messages.warning(request, _("We could not confirm the payment yet; your balance is credited once it is."))
        return
    if payment is None:
        return
    if payment.status == payment.Status.PAID:
        messages.success(request, _("Thank you. The payment is confirmed and your balance is credited."))
    elif payment.status == payment.Status.FAILED:
        messages.error(request, _("The payment was declined."))
    else:
        messages.info(request, _("Thank you. Your balance is credited as soon as the payment is confirmed."))


@login_required
@require_GET
def add_funds(request: HttpRequest) -> HttpResponse:
    checkout = request.GET.get("checkout")
    gateway, reference = request.GET.get("gateway", ""), request.GET.get("token", "")
    if gateway and reference and checkout != "cancel":
        _returned(request, gateway=gateway, reference=reference)
    elif checkout == "success":
        messages.info(request, _("Thank you. Your balance is credited as soon as the payment is confirmed."))
    elif checkout == "cancel":
        messages.warning(request, _("The payment was cancelled."))
    return _add_funds_page(request)


@login_required
@require_POST
def deposit(request: HttpRequest, gateway: str) -> HttpResponse:
    """Start a deposit through one gateway; only gateways offered on the page take one."""
    config = selectors.gateway_config_get(code=gateway)
    if config is None or not config.enabled:
        raise Http404(_("No such payment method."))
    form = config.gateway.form_class(request.POST)
    if not form.is_valid():
        return _add_funds_page(request, bound=(config.code, form), status=400)
    data = dict(form.cleaned_data)
    try:
        started = services.payment_start(
            user=request.user,  # type: ignore[arg-type]
            gateway=config.code,
            amount=data.pop("amount"),
            data=data,
            return_url=site_url(reverse("wallets:add_funds")),
        )
    except services.WalletError as exc:
        messages.error(request, str(exc))
        return _add_funds_page(request, bound=(config.code, form), status=400)
    if started.redirect_url:
        return redirect(started.redirect_url)
    if started.message:
        messages.success(request, started.message)
    return redirect("wallets:add_funds")


@login_required
@require_GET
def bonus_preview(request: HttpRequest) -> JsonResponse:
    """The bonus a typed amount would earn, for the add-funds page's script."""
    try:
        amount = to_decimal(request.GET.get("amount", ""))
    except MoneyFormatError:
        return JsonResponse({"bonus": None, "text": ""})
    if amount <= 0 or amount >= services.MAX_AMOUNT:
        return JsonResponse({"bonus": None, "text": ""})
    tier, bonus = selectors.bonus_for_amount(amount=amount)
    if tier is None or bonus <= 0:
        return JsonResponse({"bonus": "0", "text": gettext("No bonus for this amount.")})
    text = gettext("You get a %(percent)s%% bonus: +%(bonus)s %(currency)s.") % {
        "percent": _readable(tier.percent),
        "bonus": _readable(bonus),
        "currency": site_settings().base_currency,
    }
    return JsonResponse({"bonus": str(bonus), "percent": str(tier.percent), "text": text})


def _readable(value: Decimal) -> str:
    """Two decimals, more only where two would show a non-zero amount as zero (the pages'
    display rule, panel.money_display, which this layer may not import)."""
    shown = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value.normalize():f}" if shown == 0 and value != 0 else f"{shown:f}"


@login_required
@require_GET
def payment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    payment = selectors.payment_get_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    entries = payment.entries.filter(user=payment.user).order_by("id")
    return render(request, "wallets/payment_detail.html", {"payment": payment, "entries": entries})


@login_required
@require_POST
def payment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    payment = selectors.payment_get_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    try:
        services.payment_cancel(user=request.user, payment_id=payment.pk)  # type: ignore[arg-type]
    except services.WalletError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Transfer #%(id)s cancelled.") % {"id": payment.pk})
    return redirect("wallets:payment_detail", pk=payment.pk)


def _keyset_page(request: HttpRequest, entries: QuerySet[Entry]) -> tuple[list[Entry], int | None, int | None]:
    """One page of entries newest first, by id: no OFFSET and no COUNT over the ledger.

    ?before=<id> pages to older entries, ?after=<id> back to newer ones.
    """
    before, after = _int_param(request, "before"), _int_param(request, "after")
    if after is not None:
        rows = list(entries.filter(id__gt=after).order_by("id")[: ENTRIES_PER_PAGE + 1])
        has_newer = len(rows) > ENTRIES_PER_PAGE
        rows = rows[:ENTRIES_PER_PAGE][::-1]
        has_older = bool(rows)
    else:
        if before is not None:
            entries = entries.filter(id__lt=before)
        rows = list(entries.order_by("-id")[: ENTRIES_PER_PAGE + 1])
        has_older = len(rows) > ENTRIES_PER_PAGE
        rows = rows[:ENTRIES_PER_PAGE]
        has_newer = before is not None and bool(rows)
    older = rows[-1].pk if rows and has_older else None
    newer = rows[0].pk if rows and has_newer else None
    return rows, older, newer


def _int_param(request: HttpRequest, name: str) -> int | None:
    return int_or_none(request.GET.get(name))


@login_required
@require_GET
def transactions(request: HttpRequest) -> HttpResponse:
    entry_filter = EntryFilter(request.GET, queryset=selectors.entry_list_for_user(user=request.user))  # type: ignore[arg-type]
    rows, older, newer = _keyset_page(request, entry_filter.qs)
    params = request.GET.copy()
    for name in ("before", "after"):
        params.pop(name, None)
    context: dict[str, Any] = {
        "filter": entry_filter,
        "table": EntryTable(rows),
        "older": older,
        "newer": newer,
        "filter_query": params.urlencode(),
        "balance": selectors.wallet_balance(user=request.user),
    }
    return render(request, "wallets/transactions.html", context)


@login_required
@require_GET
def affiliates(request: HttpRequest) -> HttpResponse:
    affiliate = services.affiliate_get_or_create(user=request.user)  # type: ignore[arg-type]
    context = {
        "stats": selectors.affiliate_stats(affiliate=affiliate),
        "link": site_url(reverse("wallets:referral", args=[affiliate.code])),
        "commissions": selectors.commission_list_for_user(user=request.user)[:20],  # type: ignore[arg-type]
    }
    return render(request, "wallets/affiliates.html", context)


@never_cache
@require_GET
def referral(request: HttpRequest, code: str) -> HttpResponse:
    """A referral link: count the visit (once per browser), remember the code for sign-up."""
    response = redirect("home") if request.user.is_authenticated else redirect("account_signup")
    if referral_code_read(request=request) != code:
        referrer = selectors.affiliate_referrer_for_code(code=code)
        if referrer is not None and referrer.pk != request.user.pk:
            services.affiliate_record_visit(code=code)
            referral_code_remember(response=response, code=code)
    return response


@csrf_exempt  # Gateways cannot send our CSRF token; the signature authenticates the request instead.
@require_POST
def webhook(request: HttpRequest, gateway: str) -> HttpResponse:
    """Notifications from a hosted gateway, also one staff have switched off: money it took
    for an earlier payment is still credited."""
    try:
        found = gateway_get(gateway)
    except UnknownGateway:
        raise Http404(_("No such gateway.")) from None
    if found.kind is not Kind.HOSTED:
        raise Http404(_("This gateway sends no notifications."))
    try:
        notification = found.verify_notification(request)
    except SignatureError as exc:
        logger.warning("%s webhook refused: %s", gateway, exc)
        return HttpResponseBadRequest("invalid signature")
    try:
        services.payment_notify(gateway=found.code, notification=notification)
    except GatewayError as exc:
        # The gateway could not be asked about the payment: it delivers again later.
        logger.warning("%s notification %s not applied yet: %s", gateway, notification.event_id, exc)
        return HttpResponse(status=503)
    except services.WalletError as exc:
        # A rule refused it (e.g. the payment was refunded meanwhile): acknowledge so the
        # gateway stops retrying; the notification stays on the payment for staff.
        logger.error("%s notification %s not applied: %s", gateway, notification.event_id, exc)
    return HttpResponse(status=200)
