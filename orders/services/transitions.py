"""The one writer of an order's status and state, and the refunds that come with them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from catalog.quality import Finished, quality_record_final
from catalog.routing import DELIVERY, route_health_delivering, route_health_failure, route_health_success
from kernel.money import money, refund_for_remains
from wallets.services import wallet_credit

from .. import queries
from ..models import (
    STATE_TRANSITIONS,
    STATUS_TRANSITIONS,
    TERMINAL_STATUSES,
    CancelRequest,
    Order,
    OrderEvent,
    State,
    Status,
)
from .base import SUBSCRIPTIONS
from .hooks import order_changed_fields, order_changes_record

if TYPE_CHECKING:
    from accounts.models import User


def order_transition(
    *,
    order: Order,
    reason: str,
    status: str | None = None,
    state: str | None = None,
    actor: User | None = None,
    changes: Mapping[str, Any] | None = None,
) -> bool:
    """Move an order to a new status and/or state, compare-and-set against the values the
    caller read, record an OrderEvent and, on entering Partial or Canceled, refund in the
    same transaction. Returns False (and changes nothing) when the row moved meanwhile.

    Raises ValueError for a move the transition tables do not allow.
    """
    new_status = status or order.status
    new_state = state or order.state
    if new_status != order.status and new_status not in STATUS_TRANSITIONS[order.status]:
        raise ValueError(f"order #{order.pk}: status {order.status} → {new_status} is not allowed")
    if new_state != order.state and new_state not in STATE_TRANSITIONS[order.state]:
        raise ValueError(f"order #{order.pk}: state {order.state} → {new_state} is not allowed")
    values: dict[str, Any] = dict(changes or {})
    values["status"] = new_status
    values["state"] = new_state
    now = timezone.now()
    values["updated_at"] = now
    entering = new_status if new_status != order.status else None
    if entering in (Status.COMPLETED, Status.PARTIAL):
        values.setdefault("completed_at", now)
    remains = values.get("remains", order.remains)
    if entering == Status.PARTIAL and remains is None:
        raise ValueError(f"order #{order.pk}: Partial needs remains")
    if entering == Status.CANCELED and remains is None:
        values["remains"] = order.quantity
    starting = order.status == Status.PENDING and entering not in (None, Status.CANCELED)
    if starting and order.started_at is None:
        values.setdefault("started_at", now)
    # An order its route accepted that reaches a final status is measured in this transaction.
    measured = entering in TERMINAL_STATUSES and new_state == State.SENT and order.route_id is not None

    event = None
    if new_status != order.status or new_state != order.state:
        event = OrderEvent(
            order_id=order.pk,
            from_status=order.status,
            to_status=new_status,
            from_state=order.state,
            to_state=new_state,
            reason=reason[:500],
            actor=actor,
            created_at=now,
        )
    refunding = entering in (Status.PARTIAL, Status.CANCELED)
    # A change customers hear about (status, remains, start count) writes its webhook outbox
    # row in the same transaction; a move of state alone (submission) stays one statement.
    announced = bool(order_changed_fields(order=order, values=values))
    one_statement = not (refunding or measured or announced)
    if one_statement and connection.vendor == "postgresql" and not connection.in_atomic_block:
        # Nothing else has to share the transaction: the update and its event in one
        # statement, atomic on its own (submission moves every order twice this way).
        if not queries.transition_in_one_statement(order=order, values=values, event=event):
            return False
    else:
        with transaction.atomic():
            updated = Order.objects.filter(pk=order.pk, status=order.status, state=order.state).update(**values)
            if updated != 1:
                return False
            if event is not None:
                event.save(force_insert=True)
            if announced:
                order_changes_record(changes=[(order, values)])
            if entering in (Status.PARTIAL, Status.CANCELED):
                _refund(order=order, status=entering, remains=values.get("remains", order.remains), actor=actor)
            if measured:
                assert entering is not None
                _measure(order=order, status=entering, values=values, actor=actor, reason=reason)
    # Its provider started delivering: a route demoted for not delivering comes back.
    # (An order that went straight to its end is judged by that end, in _measure.)
    if (
        starting
        and not measured
        and order.route_id is not None
        and new_state == State.SENT
        and route_health_delivering(route_id=order.route_id)
    ):
        orders_release_held(service_id=order.service_id)
    for name, value in values.items():
        setattr(order, name, value)
    return True


def _measure(*, order: Order, status: str, values: Mapping[str, Any], actor: User | None, reason: str) -> None:
    """Add the order to its route's quality figures, and count its delivery in the route's
    health: Completed is delivered; Partial, or a Canceled, that neither the customer nor
    staff asked for is the provider not delivering. An order already counted as stalled is
    not counted again."""
    assert order.route_id is not None
    quality_record_final(
        order=Finished(
            route_id=order.route_id,
            service_id=order.service_id,
            status=status,
            placed_at=order.created_at,
            started_at=values.get("started_at", order.started_at),
            finished_at=values["updated_at"],
            quantity=order.quantity,
            remains=values.get("remains", order.remains),
            paced=bool(order.runs) or order.service_type == SUBSCRIPTIONS,
        )
    )
    if status == Status.COMPLETED:
        if route_health_success(route_id=order.route_id, kind=DELIVERY):
            # Counted in an open window, or the route came back: what waits for it is due.
            orders_release_held(service_id=order.service_id)
        return
    if order.stalled_at is not None or actor is not None:
        return
    if CancelRequest.objects.filter(order_id=order.pk).exists():
        return
    route = order.route
    if route is not None:
        what = "canceled by the provider" if status == Status.CANCELED else "partial"
        route_health_failure(route=route, why=f"{what} ({reason})"[:200], kind=DELIVERY)


def _refund(*, order: Order, status: str, remains: int | None, actor: User | None) -> None:
    if status == Status.CANCELED:
        amount = order.charge
        memo = f"Refund for order #{order.pk} (Canceled)"
    else:
        amount = refund_for_remains(charge=order.charge, remains=remains or 0, quantity=order.quantity)
        memo = f"Refund for order #{order.pk} (Partial, {remains} of {order.quantity} not delivered)"
    if amount <= 0:
        return
    wallet_credit(
        user=order.user,
        amount=amount,
        kind="refund",
        idempotency_key=f"order:{order.pk}:refund",
        memo=memo,
        actor=actor,
        order_ref=order.pk,
    )


def refund_amount(*, order: Order) -> Decimal:
    """What the ledger must hold as this order's refund, by its status (for display)."""
    if order.status == Status.CANCELED:
        return order.charge
    if order.status == Status.PARTIAL:
        return refund_for_remains(charge=order.charge, remains=order.remains or 0, quantity=order.quantity)
    return money(Decimal("0"))


def order_profit(*, order: Order) -> Decimal | None:
    """What the panel keeps: the charge less its refund, less what the upstream takes for
    what it delivered (its own reported charge when that is more)."""
    if order.cost is None:
        return None
    refund = refund_amount(order=order)
    if order.status == Status.CANCELED:
        upstream = Decimal("0")
    elif order.status == Status.PARTIAL:
        upstream = order.cost - refund_for_remains(
            charge=order.cost, remains=order.remains or 0, quantity=order.quantity
        )
    else:
        upstream = order.cost
    if order.margin_flag and order.provider_charge is not None and order.provider is not None:
        upstream = max(upstream, money(order.provider_charge * order.provider.exchange_rate))
    return money(order.charge - refund - upstream)


def orders_release_held(*, service_id: int, now: datetime | None = None) -> int:
    """A route of this service came back: its orders that wait for a probe (or a retry's
    backoff) are due now, for the next sweep to send, instead of at their planned time."""
    now = now or timezone.now()
    return Order.objects.filter(state=State.QUEUED, service_id=service_id, next_attempt_at__gt=now).update(
        next_attempt_at=now
    )
