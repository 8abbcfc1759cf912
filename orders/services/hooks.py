"""What the webhooks app is told about an order or a refill: the fields a reseller reads from
`status` and `refill_status`, in API v2's names and formats (API_V2.md), built here so the
webhooks app never reads an order. Called inside the transaction of the change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kernel import protocol
from siteconf.selectors import site_settings
from webhooks.services import ORDER_UPDATED, REFILL_UPDATED, NewEvent, webhook_events_record

from ..models import Order

WATCHED = ("status", "remains", "start_count")


def order_changed_fields(*, order: Order, values: Mapping[str, Any]) -> list[str]:
    """Which of the watched fields `values` changes on `order` (as read before the change)."""
    return [name for name in WATCHED if name in values and values[name] != getattr(order, name)]


def order_event(*, order: Order, values: Mapping[str, Any], changed: list[str]) -> NewEvent:
    def value(name: str) -> Any:
        return values[name] if name in values else getattr(order, name)

    data = {
        "order": order.pk,
        **protocol.status_fields(
            charge=order.charge,
            start_count=value("start_count"),
            status=value("status"),
            remains=value("remains"),
            quantity=order.quantity,
            currency=site_settings().base_currency,
        ),
        "changed": changed,
    }
    return NewEvent(user_id=order.user_id, type=ORDER_UPDATED, order_ref=order.pk, data=data)


def order_changes_record(*, changes: Iterable[tuple[Order, Mapping[str, Any]]]) -> int:
    """Outbox rows for the orders whose watched fields these changes move."""
    events = []
    for order, values in changes:
        changed = order_changed_fields(order=order, values=values)
        if changed:
            events.append(order_event(order=order, values=values, changed=changed))
    return webhook_events_record(events=events)


def refill_change_record(*, refill_id: int, order_id: int, user_id: int, status: str) -> int:
    data = {"refill": refill_id, "order": order_id, "status": status}
    return webhook_events_record(events=[NewEvent(user_id=user_id, type=REFILL_UPDATED, order_ref=order_id, data=data)])
