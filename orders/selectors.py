"""Reads for orders. Customer-owned rows are reached only through these, which 404 for
anyone else; lists page by key (`before=<id>`), never by OFFSET or COUNT over the table."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import QualityFigures
from catalog.quality import FiguresRow, is_measured, min_sample
from catalog.selectors import custom_rates_for_user, rate_for_user, service_list_for_sale
from kernel import protocol
from kernel.db import first_or_none
from kernel.numbers import int_or_none
from providers.models import ProviderCall

from .models import (
    REFILL_TERMINAL_STATUSES,
    CancelRequest,
    Order,
    OrderEvent,
    Refill,
    RefillStatus,
    RequestState,
    State,
    Status,
)

if TYPE_CHECKING:
    from accounts.models import User

PAGE_SIZE = 25
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_before: int | None  # pass as `before` to get the next (older) page


def order_get_for_user(*, user: User, pk: int) -> Order:
    order = first_or_none(Order.objects.select_related("service", "service__category").filter(pk=pk, user=user))
    if order is None:
        raise Http404("No such order")
    return order


def keyset_page(queryset: QuerySet, *, before: int | None, limit: int = PAGE_SIZE) -> Page:  # type: ignore[type-arg]
    """One page, newest first, of rows with an id below `before` (limit + 1 rows read)."""
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)


def order_queryset_for_user(*, user: User) -> QuerySet[Order]:
    return Order.objects.filter(user=user).select_related("service")


def order_search(queryset: QuerySet[Order], *, text: str) -> QuerySet[Order]:
    """By order id (with or without #) or by part of the link."""
    text = text.strip()
    if not text:
        return queryset
    condition = Q(link__icontains=text)
    number = int_or_none(text.lstrip("#"))
    if number is not None:
        condition |= Q(pk=number)
    return queryset.filter(condition)


def order_list_for_user(
    *, user: User, status: str | None = None, search: str = "", before: int | None = None, limit: int = PAGE_SIZE
) -> Page[Order]:
    queryset = order_queryset_for_user(user=user)
    if status:
        queryset = queryset.filter(status=status)
    return keyset_page(order_search(queryset, text=search), before=before, limit=limit)


def refill_list_for_user(*, user: User, before: int | None = None, limit: int = PAGE_SIZE) -> Page[Refill]:
    queryset = Refill.objects.filter(user=user).select_related("order", "order__service")
    return keyset_page(queryset, before=before, limit=limit)


def order_events_for_customer(*, order: Order) -> list[OrderEvent]:
    """Changes of the status the customer sees (submission details are for staff)."""
    return [e for e in order.events.all() if e.from_status != e.to_status]


@dataclass(frozen=True)
class OrderActions:
    can_refill: bool
    can_cancel: bool


def order_actions(*, orders: list[Order]) -> dict[int, OrderActions]:
    """Which buttons each order shows, in two queries for the whole page."""

    ids = [o.pk for o in orders]
    refilling = refills_in_flight(order_ids=ids) if ids else set()
    canceling = cancels_pending(order_ids=ids) if ids else set()
    return {
        o.pk: OrderActions(
            can_refill=refill_refusal(order=o, in_flight=o.pk in refilling) is None,
            can_cancel=cancel_refusal(order=o, pending=o.pk in canceling) is None,
        )
        for o in orders
    }


def order_provider_calls(*, order: Order, limit: int = 50) -> list[ProviderCall]:
    return list(ProviderCall.objects.filter(order_ref=order.pk).order_by("-started_at")[:limit])


_ORDER_PAGE_FIELDS = (
    "id",
    "name",
    "category__name",
    "type",
    "billing_unit",
    "price",
    "cost",
    "min_quantity",
    "max_quantity",
    "description",
    "average_time_minutes",
    "refill",
    "cancel",
    "dripfeed",
    "max_posts",
)


def services_for_order_page(*, user: User) -> list[dict[str, Any]]:
    """What the new-order page's script needs about each service for sale (JSON-ready).

    The rate is this customer's; it is shown and previewed only: order_place prices again.
    Read as plain values (a thousand services: model instances were most of the time).
    """
    result = []
    custom_rates = custom_rates_for_user(user=user)
    rows = (
        service_list_for_sale()
        .order_by("category__sort_order", "category__name", "position", "id")
        .values(*_ORDER_PAGE_FIELDS, **FiguresRow.lookups("quality__"))
    )
    for row in rows:
        kind = _order_page_kind(row["type"], row["billing_unit"])
        if kind is None:
            continue
        rate = rate_for_user(
            service_id=row["id"], price=row["price"], cost=row["cost"], user=user, custom_rates=custom_rates
        )
        result.append(
            {
                "id": row["id"],
                "name": row["name"],
                "category": row["category__name"],
                "type": kind["type"],
                "rate": str(rate),
                "min": row["min_quantity"],
                "max": row["max_quantity"],
                "description": row["description"],
                "average_time": row["average_time_minutes"],
                "refill": row["refill"],
                "cancel": row["cancel"],
                "dripfeed": row["dripfeed"] and kind["dripfeed_capable"],
                "fields": kind["fields"],
                "required": kind["required"],
                "quantity_from": kind["quantity_from"],
                "has_quantity": kind["has_quantity"],
                # What the rate is the price of (API_V2.md, "What an order costs").
                "billing": kind["billing"],
                "per": kind["per"],
                "billing_label": kind["billing_label"],
                "lines_from": kind["lines_from"],
                "max_posts": row["max_posts"],
                "quality": quality_for_page(FiguresRow.from_values(row)),
            }
        )
    return result


@functools.cache
def _order_page_kind(type_name: str, billing_unit: str) -> dict[str, Any] | None:
    """The new-order page's facts about a service type and billing unit (kernel.protocol's
    constants), worked out once per pair: a thousand services share a handful. None for a
    type the panel does not sell. The rows share the lists; they are only encoded."""
    stype = protocol.SERVICE_TYPES_BY_NAME.get(type_name)
    if stype is None:
        return None
    billing = protocol.billing_of(type_name, billing_unit)
    return {
        "type": stype.name,
        "dripfeed_capable": stype.dripfeed_capable,
        "fields": [f for f in stype.fields if f not in ("runs", "interval")],
        "required": list(stype.required),
        "quantity_from": stype.quantity_from,
        "has_quantity": stype.has_quantity,
        "billing": billing,
        "per": protocol.BILLING_DIVISOR[billing],
        "billing_label": protocol.BILLING_UNITS[billing],
        "lines_from": next((f for f in stype.fields if f in protocol.LIST_FIELDS), None),
    }


def _share(value: Any) -> str:
    return "—" if value is None else f"{value.quantize(Decimal('0.1'))}"


def quality_for_page(figures: QualityFigures | FiguresRow | None) -> dict[str, Any] | None:
    """A service's measured figures for the new-order page's script (seconds, percentages)."""
    if figures is None:
        return None
    return {
        "measured": is_measured(figures) and figures.start_p50 is not None,
        "sample": figures.started,
        "start_p50": figures.start_p50,
        "start_p90": figures.start_p90,
        "per1000_p50": figures.per1000_p50 if figures.delivered >= min_sample() else None,
        "completed": _share(figures.completed_share),
        "partial": _share(figures.partial_share),
        "canceled": _share(figures.canceled_share),
    }


# --- Whether a refill or cancel may be asked for now ---------------------------------------
def refill_refusal(*, order: Order, now: datetime | None = None, in_flight: bool | None = None) -> str | None:
    """Why this order cannot be refilled now, or None when it can. Lists pass `in_flight`
    (whether a refill is open) computed for a whole page at once."""
    now = now or timezone.now()
    if not order.service.refill:
        return _("Refill is not available for this service")
    if order.status not in (Status.COMPLETED, Status.PARTIAL) or order.state != State.SENT:
        return _("Refill is available only for completed orders")
    if order.completed_at is None or now > order.completed_at + timedelta(days=order.service.refill_days):
        return _("The refill period for this order has ended")
    if in_flight is None:
        if refills_in_flight(order_ids=[order.pk], refused_too=False):
            return _("A refill for this order is already in progress")
        in_flight = refills_in_flight(order_ids=[order.pk]) != set()
    if in_flight:
        return _("The provider refused a refill of this order recently: ask again later or open a ticket")
    return None


def _refused_since() -> datetime:
    """A refused refill or cancel is not forwarded again before this (one provider call per
    click would otherwise be anyone's to repeat)."""
    return timezone.now() - timedelta(hours=float(settings.ORDERS_REFUSED_REQUEST_COOLDOWN_HOURS))


def refills_in_flight(*, order_ids: list[int], refused_too: bool = True) -> set[int]:
    """The orders among these with a refill that is neither finished nor rejected (and, with
    `refused_too`, with a refill the provider refused recently)."""
    open_refills = Q(state__in=(RequestState.QUEUED, RequestState.SENDING, RequestState.SENT, RequestState.UNKNOWN))
    open_refills &= ~Q(status__in=REFILL_TERMINAL_STATUSES)
    blocking = open_refills
    if refused_too:
        blocking |= Q(updated_at__gte=_refused_since()) & (
            Q(state=RequestState.REJECTED) | Q(status=RefillStatus.REJECTED)
        )
    return set(Refill.objects.filter(blocking, order_id__in=order_ids).values_list("order_id", flat=True))


def cancels_pending(*, order_ids: list[int], refused_too: bool = True) -> set[int]:
    """The orders among these with a cancel request under way (and, with `refused_too`,
    with one the provider refused recently)."""
    blocking = ~Q(state=RequestState.REJECTED)
    if refused_too:
        blocking |= Q(state=RequestState.REJECTED, updated_at__gte=_refused_since())
    return set(CancelRequest.objects.filter(blocking, order_id__in=order_ids).values_list("order_id", flat=True))


def cancel_refusal(*, order: Order, pending: bool | None = None) -> str | None:
    if order.is_terminal:
        return _("This order can no longer be canceled")
    if order.state == State.QUEUED and (order.attempts or order.next_attempt_at):
        # Never sent and waiting (for provider funds, a paused provider, a retry): the
        # customer may take the money back, whatever the service allows upstream.
        return None
    if not order.service.cancel:
        return _("Cancel is not available for this service")
    if order.state == State.QUEUED:
        return None
    if order.state != State.SENT or not order.provider_order_id:
        return _("This order cannot be canceled right now")
    if pending is None:
        if cancels_pending(order_ids=[order.pk], refused_too=False):
            return _("A cancel request for this order is already pending")
        pending = cancels_pending(order_ids=[order.pk]) != set()
    if pending:
        return _("The provider refused to cancel this order recently: ask again later or open a ticket")
    return None
