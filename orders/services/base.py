"""The error type the order services raise, their outcomes and settings access."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    pass


SUBSCRIPTIONS = "Subscriptions"


class OrderError(Exception):
    """A business rule refused the request; `message` is shown to the person as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class SubmitOutcome(StrEnum):
    """What one order_submit did (tasks log it; tests compare it)."""

    SENT = "sent"
    SKIPPED = "skipped"  # not queued any more, or another worker claimed it
    WAITING = "waiting"  # only paused providers are left
    WAITING_FUNDS = "waiting_funds"  # our balance at the provider cannot pay for it
    RETRY = "retry"  # surely not sent: queued again with backoff
    NEXT_ROUTE = "next_route"
    PAUSED = "paused"  # the provider refused our account
    REJECTED = "rejected"  # canceled and refunded
    UNKNOWN = "unknown"  # may have been placed: for a person
    LOST = "lost"  # accepted, but the row had moved on


class SyncOutcome(StrEnum):
    CHECKED = "checked"
    CHANGED = "changed"
    FLAGGED = "flagged"
    SKIPPED = "skipped"


class RequestOutcome(StrEnum):
    """What forwarding one refill or cancel request did."""

    SENT = "sent"
    SKIPPED = "skipped"
    RETRY = "retry"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
