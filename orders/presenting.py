"""What the customer pages show about an order beyond its row: the money refunded, drip-feed
progress, the refill window, and the fields a reorder starts from. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from kernel import protocol
from wallets.models import Entry

from .models import Order, Status


@dataclass(frozen=True)
class OrderFacts:
    refunded: Decimal  # returned to the balance (Partial, Canceled)
    paid: Decimal  # charge − refunded
    delivered: int | None  # units delivered so far, when the provider said what remains
    percent: int | None  # of the order delivered
    runs_done: int | None  # drip-feed: whole runs delivered
    refill_until: datetime | None  # the end of the refill guarantee
    refill_open: bool


def order_facts(*, order: Order, now: datetime | None = None) -> OrderFacts:
    now = now or timezone.now()
    refunded = Entry.objects.filter(user_id=order.user_id, order_ref=order.pk, kind=Entry.Kind.REFUND).aggregate(
        total=Sum("amount")
    )["total"] or Decimal("0")
    delivered = percent = runs_done = None
    units = order.quantity if order.billing == protocol.BILL_PER_1000 else None
    if units and order.remains is not None:
        delivered = max(0, units - order.remains)
        percent = min(100, round(delivered * 100 / units))
    elif order.status == Status.COMPLETED:
        percent = 100
    if order.runs and delivered is not None:
        per_run = max(1, units // order.runs) if units else 1
        runs_done = min(order.runs, delivered // per_run)
    elif order.runs and order.status == Status.COMPLETED:
        runs_done = order.runs
    refill_until = None
    if order.service.refill and order.completed_at is not None:
        refill_until = order.completed_at + timedelta(days=order.service.refill_days)
    return OrderFacts(
        refunded=refunded,
        paid=order.charge - refunded,
        delivered=delivered,
        percent=percent,
        runs_done=runs_done,
        refill_until=refill_until,
        refill_open=refill_until is not None and now <= refill_until,
    )


def order_reorder_initial(*, order: Order) -> dict[str, Any]:
    """The new-order form's fields for placing `order` again (the customer reviews them)."""
    initial: dict[str, Any] = {"service": order.service_id}
    if order.link:
        initial["link"] = order.link
    stype = protocol.SERVICE_TYPES_BY_NAME.get(order.service_type)
    if stype is not None and stype.has_quantity and not stype.quantity_from and order.billing == protocol.BILL_PER_1000:
        initial["quantity"] = order.quantity // order.runs if order.runs else order.quantity
    if order.runs:
        initial.update(dripfeed=True, runs=order.runs, interval=order.interval)
    for name, value in (order.fields or {}).items():
        if name in ("link", "quantity", "runs", "interval", "expiry"):
            continue
        initial[name] = "\n".join(map(str, value)) if isinstance(value, list) else value
    return initial
