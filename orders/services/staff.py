"""Staff actions from the Django admin."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from kernel import protocol
from kernel.db import first_or_none

from ..models import (
    Order,
    State,
    Status,
)

if TYPE_CHECKING:
    from accounts.models import User
from . import outbox
from .base import OrderError
from .transitions import order_transition


def _locked(order_id: int) -> Order:
    order = first_or_none(Order.objects.select_for_update().filter(pk=order_id))
    if order is None:
        raise OrderError(protocol.ERR_INCORRECT_ORDER)
    return order


def order_resend(*, order_id: int, actor: User, confirm_unknown: bool = False) -> Order:
    """Send a queued order now; an `unknown` one only when staff confirm the provider
    never placed it (else the customer could be served, and we charged, twice)."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.state == State.QUEUED:
            Order.objects.filter(pk=order.pk).update(next_attempt_at=timezone.now())
        elif order.state == State.UNKNOWN:
            if not confirm_unknown:
                raise OrderError(
                    f"Order #{order.pk} may already be placed at the provider: confirm it was never placed first"
                )
            order_transition(
                order=order,
                state=State.QUEUED,
                reason="staff confirmed it was never placed; resent",
                actor=actor,
                changes={"next_attempt_at": timezone.now(), "sync_note": ""},
            )
        else:
            raise OrderError(
                f"Order #{order.pk} is {order.get_state_display().lower()}: only queued or unknown orders can be resent"
            )
        transaction.on_commit(partial(outbox.enqueue_submit, order_id=order.pk), robust=True)
    return order


RESOLVE_PLACED = "placed"


RESOLVE_REQUEUE = "requeue"


RESOLVE_CANCEL = "cancel"


def order_resolve_unknown(*, order_id: int, actor: User, resolution: str, provider_order_id: str = "") -> Order:
    """Settle an order whose submission outcome is unknown, after staff asked the provider."""
    if resolution == RESOLVE_REQUEUE:
        return order_resend(order_id=order_id, actor=actor, confirm_unknown=True)
    with transaction.atomic():
        order = _locked(order_id)
        if order.state != State.UNKNOWN:
            raise OrderError(f"Order #{order.pk} is not in the unknown state")
        if resolution == RESOLVE_PLACED:
            pid = provider_order_id.strip()
            if not pid or len(pid) > 64:
                raise OrderError("Enter the provider's order id")
            try:
                with transaction.atomic():
                    order_transition(
                        order=order,
                        state=State.SENT,
                        reason=f"staff confirmed it was placed as #{pid}",
                        actor=actor,
                        changes={
                            "provider_order_id": pid,
                            "sent_at": timezone.now(),
                            "sync_note": "",
                            "sync_flag": False,
                        },
                    )
            except IntegrityError:
                raise OrderError(f"Provider order id {pid} is already attached to another order") from None
        elif resolution == RESOLVE_CANCEL:
            order_transition(
                order=order,
                state=State.CANCELED,
                status=Status.CANCELED,
                reason="staff confirmed it was never placed; canceled and refunded",
                actor=actor,
                changes={"customer_note": "Canceled and refunded"},
            )
        else:
            raise OrderError("Unknown resolution")
    return order


def order_cancel_refund(*, order_id: int, actor: User, reason: str = "") -> Order:
    """Cancel and refund the whole charge, whatever the provider does from here on."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal:
            raise OrderError(f"Order #{order.pk} is already {order.status}")
        if order.state == State.SENDING:
            raise OrderError(f"Order #{order.pk} is being sent right now: try again in a minute")
        state = State.CANCELED if order.state in (State.QUEUED, State.UNKNOWN) else None
        order_transition(
            order=order,
            status=Status.CANCELED,
            state=state,
            reason=f"staff canceled and refunded: {reason}" if reason else "staff canceled and refunded",
            actor=actor,
            changes={"customer_note": "Canceled and refunded"},
        )
    return order


def order_set_partial(*, order_id: int, actor: User, remains: int) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal or order.state != State.SENT:
            raise OrderError(f"Order #{order.pk} must be sent and active to be set Partial")
        if not 0 <= remains <= order.quantity:
            raise OrderError(f"Remains must be between 0 and {order.quantity}")
        order_transition(
            order=order,
            status=Status.PARTIAL,
            reason=f"staff set Partial, remains {remains}",
            actor=actor,
            changes={"remains": remains},
        )
    return order


def order_mark_completed(*, order_id: int, actor: User) -> Order:
    with transaction.atomic():
        order = _locked(order_id)
        if order.is_terminal or order.state != State.SENT:
            raise OrderError(f"Order #{order.pk} must be sent and active to be marked Completed")
        order_transition(
            order=order, status=Status.COMPLETED, reason="staff marked Completed", actor=actor, changes={"remains": 0}
        )
    return order
