"""Customer pages: function views; POST → form → service → message → redirect.

Orders are reached only through `order_get_for_user`, which 404s for anyone else.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kernel import protocol
from kernel.numbers import int_or_none
from siteconf.selectors import site_settings
from wallets.selectors import wallet_balance

from .filters import OrderFilter
from .forms import MassOrderForm, NewOrderForm, new_token
from .models import Status
from .presenting import order_facts, order_reorder_initial
from .selectors import (
    keyset_page,
    order_actions,
    order_events_for_customer,
    order_get_for_user,
    order_queryset_for_user,
    refill_list_for_user,
    services_for_order_page,
)
from .services import OrderError, cancel_request, error_field, order_place, refill_request
from .tables import OrderTable, RefillTable

MASS_RESULTS_KEY = "orders_mass_results"
# Fields in the order the new-order page shows them; the script hides those the chosen
# service's type does not take.
FIELD_ORDER = tuple(spec.name for spec in protocol.FIELD_SPECS if spec.name not in ("runs", "interval"))


def _charge_text(amount: Decimal) -> str:
    """An amount for a message: two decimals, more only where two would show it as zero
    (the pages' display rule, panel.money_display, a layer above this one)."""
    shown = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{amount.normalize():f}" if shown == 0 and amount != 0 else f"{shown:f}"
    return f"{text} {site_settings().base_currency}"


def _before(request: HttpRequest) -> int | None:
    return int_or_none(request.GET.get("before"))


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


@login_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    user = request.user
    short_of_funds = False
    if request.method == "POST":
        form = NewOrderForm(request.POST)
        if form.is_valid():
            try:
                order = order_place(
                    user=user,  # type: ignore[arg-type]
                    service_id=form.cleaned_data["service"],
                    fields=form.api_fields(),
                    idempotency_key=form.idempotency_key(),
                )
            except OrderError as exc:
                # Shown next to the field it is about; the rest above the form.
                field = error_field(exc.message)
                form.add_error(field if field in form.fields else None, exc.message)
                short_of_funds = exc.message == protocol.ERR_NOT_ENOUGH_FUNDS
            else:
                messages.success(
                    request,
                    _("Order #%(pk)s placed: %(charge)s charged.")
                    % {"pk": order.pk, "charge": _charge_text(order.charge)},
                )
                return redirect("orders:detail", pk=order.pk)
    else:
        initial: dict[str, Any] = {"token": new_token()}
        reorder = int_or_none(request.GET.get("reorder"), min=1)
        if reorder is not None:
            # Another customer's order number is a 404, like its page.
            initial.update(order_reorder_initial(order=order_get_for_user(user=user, pk=reorder)))  # type: ignore[arg-type]
        service = int_or_none(request.GET.get("service"), min=1)
        if service is not None:
            initial["service"] = service
        form = NewOrderForm(initial=initial)
    for name in form.errors:
        if name in form.fields:
            widget = form.fields[name].widget
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
            widget.attrs["aria-invalid"] = "true"
    selected = form["service"].value()
    balance = wallet_balance(user=user)  # type: ignore[arg-type]
    context = {
        "form": form,
        "services": services_for_order_page(user=user),  # type: ignore[arg-type]
        "selected_service": str(selected) if selected not in (None, "") else "",
        "type_fields": [form[name] for name in FIELD_ORDER],
        "short_of_funds": short_of_funds,
        "available": balance,
        # A new customer with nothing to spend is shown where to add funds first.
        "first_visit": balance <= 0 and not order_queryset_for_user(user=user).exists(),  # type: ignore[arg-type]
    }
    return render(request, "orders/new.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def mass(request: HttpRequest) -> HttpResponse:
    results: list[dict[str, Any]] | None = None
    if request.method == "POST":
        form = MassOrderForm(request.POST)
        if form.is_valid():
            results = _place_mass(request, form)
            placed = sum(1 for r in results if r["ok"])
            failed = len(results) - placed
            request.session[MASS_RESULTS_KEY] = results
            if failed:
                messages.warning(
                    request,
                    _("%(placed)s orders placed, %(failed)s refused: see the results below.")
                    % {"placed": placed, "failed": failed},
                )
            else:
                messages.success(
                    request,
                    ngettext("%(placed)s order placed.", "%(placed)s orders placed.", placed) % {"placed": placed},
                )
            return redirect("orders:mass")
    else:
        form = MassOrderForm(initial={"token": new_token()})
        results = request.session.pop(MASS_RESULTS_KEY, None)
    return render(request, "orders/mass.html", {"form": form, "results": results})


def _place_mass(request: HttpRequest, form: MassOrderForm) -> list[dict[str, Any]]:
    token = form.cleaned_data.get("token") or ""
    results: list[dict[str, Any]] = []
    for line in form.cleaned_data["orders"]:
        result: dict[str, Any] = {"line": line.number, "text": line.text[:200], "ok": False, "message": line.problem}
        if not line.problem:
            try:
                # Each line is its own order and transaction: a refused line charges nothing
                # and does not stop the others. The token makes a resubmitted page idempotent.
                order = order_place(
                    user=request.user,  # type: ignore[arg-type]
                    service_id=line.service_id,
                    fields={"link": line.link, "quantity": line.quantity},
                    idempotency_key=f"mass-{token}-{line.number}" if token else None,
                )
            except OrderError as exc:
                result["message"] = exc.message
            else:
                result.update(
                    ok=True,
                    order=order.pk,
                    message=_("Order #%(pk)s: %(charge)s charged")
                    % {"pk": order.pk, "charge": _charge_text(order.charge)},
                )
        results.append(result)
    return results


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    filterset = OrderFilter(request.GET, queryset=order_queryset_for_user(user=request.user))  # type: ignore[arg-type]
    page = keyset_page(filterset.qs, before=_before(request))
    actions = order_actions(orders=page.rows)
    for order in page.rows:
        order.actions = actions[order.pk]  # type: ignore[attr-defined]
    status = request.GET.get("status", "")
    search = request.GET.get("q", "")
    tabs = [(_("All"), "", status == "")] + [(label, value, status == value) for value, label in Status.choices]
    keep = {k: v for k, v in (("status", status), ("q", search)) if v}
    context = {
        "table": OrderTable(page.rows),
        "filter": filterset,
        "tabs": [
            (
                label,
                "?" + urlencode({**({"status": value} if value else {}), **({"q": search} if search else {})}),
                active,
            )
            for label, value, active in tabs
        ],
        "next_url": "?" + urlencode({**keep, "before": page.next_before}) if page.next_before else "",
        "first_url": "?" + urlencode(keep) if _before(request) else "",
        "search": search,
        "status": status,
    }
    return render(request, "orders/list.html", context)


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = order_get_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    context = {
        "order": order,
        "facts": order_facts(order=order),
        "actions": order_actions(orders=[order])[order.pk],
        "events": order_events_for_customer(order=order),
        "refills": list(order.refills.all()[:20]),
        "fields": [
            (protocol.field_label(name, gettext), ", ".join(map(str, value)) if isinstance(value, list) else value)
            for name, value in order.fields.items()
            if name not in ("link", "quantity", "runs", "interval")
        ],
    }
    return render(request, "orders/detail.html", context)


@login_required
@require_POST
def refill(request: HttpRequest, pk: int) -> HttpResponse:
    order = order_get_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    try:
        refill_request(user=request.user, order_id=order.pk)  # type: ignore[arg-type]
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Refill requested for order #%(id)s.") % {"id": order.pk})
    return _back(request, reverse("orders:detail", args=[order.pk]))


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = order_get_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    try:
        forwarded = cancel_request(user=request.user, order_id=order.pk)  # type: ignore[arg-type]
    except OrderError as exc:
        messages.error(request, exc.message)
    else:
        if forwarded is None:
            messages.success(request, _("Order #%(id)s canceled and refunded.") % {"id": order.pk})
        else:
            messages.success(
                request,
                _("Cancel requested for order #%(id)s; the refund follows once the provider cancels it.")
                % {"id": order.pk},
            )
    return _back(request, reverse("orders:detail", args=[order.pk]))


@login_required
@require_GET
def refills(request: HttpRequest) -> HttpResponse:
    page = refill_list_for_user(user=request.user, before=_before(request))  # type: ignore[arg-type]
    context = {
        "table": RefillTable(page.rows),
        "next_url": "?" + urlencode({"before": page.next_before}) if page.next_before else "",
        "first_url": "?" if _before(request) else "",
    }
    return render(request, "orders/refills.html", context)
