"""Staff actions from the Django admin."""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from kernel import protocol
from kernel.db import first_or_none
from kernel.numbers import int_or_none
from kernel.text import has_hidden_characters

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


def order_resend(*, order_id: int, actor: User, confirm_unknown: bool = False, reason: str = "") -> Order:
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
                reason="staff confirmed it was never placed; resent"
                + (f" ({reason.strip()[:200]})" if reason.strip() else ""),
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


def order_resolve_unknown(
    *, order_id: int, actor: User, resolution: str, provider_order_id: str = "", reason: str = ""
) -> Order:
    """Settle an order whose submission outcome is unknown, after staff asked the provider."""
    why = f" ({reason.strip()[:200]})" if reason.strip() else ""
    if resolution == RESOLVE_REQUEUE:
        return order_resend(order_id=order_id, actor=actor, confirm_unknown=True, reason=reason)
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
                        reason=f"staff confirmed it was placed as #{pid}{why}",
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
                reason=f"staff confirmed it was never placed; canceled and refunded{why}",
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


MAX_PROVIDER_ID = 64


def provider_ids_match(*, order_ids: list[int], text: str) -> dict[int, str]:
    """Which provider order id belongs to which of these orders, from what staff pasted.

    One line an order: either `<our order id> <provider's id>` (separated by spaces, a tab,
    a comma, a colon or `=`), or the provider's ids alone, one a line, in the order of our
    ids (ascending, as the page lists them). Everything must match or nothing does."""
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    wanted = sorted(order_ids)
    if not lines:
        raise OrderError("Paste the provider's order ids, one a line.")
    split = [(n, re.split(r"[\s,;:=]+", line)) for n, line in lines]
    if all(len(parts) == 2 for _, parts in split):
        matched: dict[int, str] = {}
        for n, (ours, theirs) in split:
            order_id = int_or_none(ours)
            if order_id is None or order_id not in wanted:
                raise OrderError(f"Line {n}: #{ours} is not one of the selected orders.")
            if order_id in matched:
                raise OrderError(f"Line {n}: order #{order_id} is named twice.")
            matched[order_id] = theirs
        missing = [pk for pk in wanted if pk not in matched]
        if missing:
            raise OrderError(f"No provider id for order(s) {', '.join(f'#{pk}' for pk in missing[:10])}.")
    elif all(len(parts) == 1 for _, parts in split):
        if len(split) != len(wanted):
            raise OrderError(f"{len(split)} provider ids for {len(wanted)} orders: one a line, in the listed order.")
        matched = {pk: parts[0] for pk, (_, parts) in zip(wanted, split, strict=True)}
    else:
        raise OrderError("Use one form for every line: the provider's id alone, or our order id then the provider's.")
    seen: set[str] = set()
    for order_id, pid in matched.items():
        if len(pid) > MAX_PROVIDER_ID or has_hidden_characters(pid):
            raise OrderError(f"Order #{order_id}: {pid[:20]!r} is not a provider order id.")
        if pid in seen:
            raise OrderError(f"Provider order id {pid} is given to two orders.")
        seen.add(pid)
    return matched


def orders_resolve_unknown(
    *, order_ids: list[int], actor: User, resolution: str, provider_ids: str = "", reason: str = ""
) -> int:
    """Resolve many unknown orders the same way, all or none: placed (with the provider's ids,
    matched by provider_ids_match), never placed and sent again, or never placed and refunded."""
    if not reason.strip():
        raise OrderError("Say why (what the provider answered): it is kept in each order's history.")
    matched = provider_ids_match(order_ids=order_ids, text=provider_ids) if resolution == RESOLVE_PLACED else {}
    with transaction.atomic():
        for order_id in sorted(order_ids):
            try:
                order_resolve_unknown(
                    order_id=order_id,
                    actor=actor,
                    resolution=resolution,
                    provider_order_id=matched.get(order_id, ""),
                    reason=reason,
                )
            except OrderError as exc:
                raise OrderError(f"Order #{order_id}: {exc.message} Nothing was changed.") from None
    return len(order_ids)
