"""Reads for orders. Customer-owned rows are reached only through these, which 404 for
anyone else; lists page by key (`before=<id>`), never by OFFSET or COUNT over the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from django.db.models import Q, QuerySet
from django.http import Http404

from providers.models import ProviderCall

from .models import Order, OrderEvent, Refill

if TYPE_CHECKING:
    from accounts.models import User

PAGE_SIZE = 25
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_before: int | None  # pass as `before` to get the next (older) page


def order_get_for_user(*, user: User, pk: int) -> Order:
    order = Order.objects.select_related("service", "service__category").filter(pk=pk, user=user).first()
    if order is None:
        raise Http404("No such order")
    return order


def _keyset(queryset: QuerySet, *, before: int | None, limit: int) -> Page:  # type: ignore[type-arg]
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows=rows, next_before=rows[-1].pk if more and rows else None)


def order_list_for_user(
    *, user: User, status: str | None = None, search: str = "", before: int | None = None, limit: int = PAGE_SIZE
) -> Page[Order]:
    queryset = Order.objects.filter(user=user).select_related("service")
    if status:
        queryset = queryset.filter(status=status)
    search = search.strip()
    if search:
        condition = Q(link__icontains=search)
        if search.lstrip("#").isdigit() and len(search) < 19:
            condition |= Q(pk=int(search.lstrip("#")))
        queryset = queryset.filter(condition)
    return _keyset(queryset, before=before, limit=limit)


def refill_list_for_user(*, user: User, before: int | None = None, limit: int = PAGE_SIZE) -> Page[Refill]:
    queryset = Refill.objects.filter(user=user).select_related("order", "order__service")
    return _keyset(queryset, before=before, limit=limit)


def order_events_for_customer(*, order: Order) -> list[OrderEvent]:
    """Changes of the status the customer sees (submission details are for staff)."""
    return [e for e in order.events.all() if e.from_status != e.to_status]


def order_provider_calls(*, order: Order, limit: int = 50) -> list[ProviderCall]:
    return list(ProviderCall.objects.filter(order_ref=order.pk).order_by("-started_at")[:limit])
