"""Reads for support tickets. A customer reaches a ticket only through these (404 otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count
from django.http import Http404

from .models import Message, Status, Ticket

if TYPE_CHECKING:
    from accounts.models import User

PAGE_SIZE = 25


@dataclass(frozen=True)
class TicketPage:
    rows: Sequence[Ticket]
    next_before: int | None


def ticket_list_for_user(
    *, user: User, status: str | None = None, before: int | None = None, limit: int = PAGE_SIZE
) -> TicketPage:
    """The customer's tickets, newest first, paged by key."""
    queryset = Ticket.objects.filter(user=user).annotate(message_count=Count("messages"))
    if status in Status.values:
        queryset = queryset.filter(status=status)
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    rows = list(queryset.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return TicketPage(rows=rows, next_before=rows[-1].pk if more and rows else None)


def ticket_get_for_user(*, user: User, pk: int) -> Ticket:
    ticket = Ticket.objects.filter(pk=pk, user=user).first()
    if ticket is None:
        raise Http404("No such ticket")
    return ticket


def ticket_messages(*, ticket: Ticket) -> list[Message]:
    return list(ticket.messages.select_related("author").order_by("id"))


def ticket_order_ids(*, ticket: Ticket) -> list[int]:
    return sorted(ticket.orders.values_list("pk", flat=True))


def ticket_count_waiting() -> int:
    """Tickets waiting for staff (open); served by the status index."""
    return Ticket.objects.filter(status=Status.OPEN).count()


def ticket_list_waiting(*, limit: int = 5) -> list[Ticket]:
    return list(Ticket.objects.filter(status=Status.OPEN).select_related("user").order_by("last_message_at")[:limit])
