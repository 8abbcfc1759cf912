"""Refill and cancel requests forwarded to the provider, and refill status sync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from catalog.quality import quality_record_refill
from kernel import protocol
from kernel.db import first_or_none
from providers.client import NotSent, ProviderError, Rejected, UnknownOutcome
from providers.models import Provider
from providers.services import provider_client

from ..models import (
    REFILL_TERMINAL_STATUSES,
    REQUEST_STATE_TRANSITIONS,
    CancelRequest,
    Order,
    Refill,
    RefillStatus,
    RequestState,
    State,
    Status,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from accounts.models import User
from ..selectors import cancel_refusal, refill_refusal
from . import outbox
from .base import OrderError, RequestOutcome, _setting
from .hooks import refill_change_record
from .staff import provider_ids_match
from .submission import _retry_delay
from .transitions import order_transition

logger = logging.getLogger(__name__)

# Stored in English; the order page translates it when it shows it.
CANCELED_AT_REQUEST = gettext_noop("Canceled at your request")


def refill_request(*, user: User, order_id: int) -> Refill:
    with transaction.atomic():
        # Locked so two clicks cannot create two refills.
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id, user=user))
        if order is None:
            raise OrderError(_(protocol.ERR_INCORRECT_ORDER))
        refusal = refill_refusal(order=order)
        if refusal is not None:
            raise OrderError(refusal)
        assert order.provider_id is not None
        refill = Refill.objects.create(order=order, user=user, provider_id=order.provider_id)
        transaction.on_commit(partial(outbox.enqueue_refill, pk=refill.pk), robust=True)
    return refill


def _request_move(obj: UpstreamRequest, *, old: str, new: str, **changes: Any) -> bool:
    if new not in REQUEST_STATE_TRANSITIONS[old]:
        raise ValueError(f"{obj}: {old} → {new} is not allowed")
    now = timezone.now()
    announced = isinstance(obj, Refill) and "status" in changes and changes["status"] != obj.status
    with transaction.atomic():
        updated = type(obj)._default_manager.filter(pk=obj.pk, state=old).update(state=new, updated_at=now, **changes)
        if updated == 1 and announced:
            assert isinstance(obj, Refill)
            refill_change_record(refill_id=obj.pk, order_id=obj.order_id, user_id=obj.user_id, status=changes["status"])
    if updated == 1:
        obj.state = new
        for name, value in changes.items():
            setattr(obj, name, value)
    return updated == 1


def _forward(
    *,
    request: UpstreamRequest,
    call: Callable[[], object],
    accepted: Callable[[object], dict[str, Any]],
    rejected: dict[str, Any],
    enqueue: Callable[..., None],
) -> RequestOutcome:
    """Forward one refill or cancel request to the provider: claim it with a compare-and-set
    `queued → sending`, call outside any transaction, record what came back. The same rules
    as an order's submission: surely not sent → queued again with backoff; refused →
    rejected; anything we cannot read → unknown, for a person."""
    if request.state != RequestState.QUEUED:
        return RequestOutcome.SKIPPED
    attempts = request.attempts + 1
    if not _request_move(
        request, old=RequestState.QUEUED, new=RequestState.SENDING, attempts=attempts, sending_started_at=timezone.now()
    ):
        return RequestOutcome.SKIPPED
    try:
        result = call()
    except (NotSent, ValidationError) as exc:
        delay = _retry_delay(attempts)
        note = exc.message if isinstance(exc, NotSent) else "; ".join(exc.messages)
        if _request_move(
            request,
            old=RequestState.SENDING,
            new=RequestState.QUEUED,
            note=f"not sent: {note}"[:500],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        ):
            enqueue(pk=request.pk, countdown=delay)
        return RequestOutcome.RETRY
    except Rejected as exc:
        result = exc
    except Exception as exc:
        if not isinstance(exc, UnknownOutcome):
            logger.exception("%s: unexpected error", request)
        _request_move(request, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=str(exc)[:500])
        return RequestOutcome.UNKNOWN
    if isinstance(result, Rejected):
        _request_move(
            request, old=RequestState.SENDING, new=RequestState.REJECTED, note=result.message[:500], **rejected
        )
        return RequestOutcome.REJECTED
    try:
        changes = accepted(result)
    except ValueError as exc:
        _request_move(request, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=str(exc)[:500])
        return RequestOutcome.UNKNOWN
    try:
        _request_move(request, old=RequestState.SENDING, new=RequestState.SENT, **changes)
    except IntegrityError:
        note = f"provider answered {changes}, already used by another request"
        _request_move(request, old=RequestState.SENDING, new=RequestState.UNKNOWN, note=note[:500])
        return RequestOutcome.UNKNOWN
    return RequestOutcome.SENT


def refill_submit(*, refill_id: int) -> RequestOutcome:
    refill = Refill.objects.select_related("order", "provider").filter(pk=refill_id).first()
    if refill is None:
        return RequestOutcome.SKIPPED
    pid = str(refill.order.provider_order_id)
    return _forward(
        request=refill,
        call=lambda: provider_client(provider=refill.provider).refill(pid),
        accepted=lambda refill_id: {"provider_refill_id": refill_id, "note": ""},
        rejected={"status": RefillStatus.REJECTED},
        enqueue=outbox.enqueue_refill,
    )


def _cancel_accepted(result: object) -> dict[str, Any]:
    if result is not True:
        raise ValueError(str(result))
    return {"note": ""}


def cancel_submit(*, cancel_id: int) -> RequestOutcome:
    request = CancelRequest.objects.select_related("order", "provider").filter(pk=cancel_id).first()
    if request is None:
        return RequestOutcome.SKIPPED
    pid = str(request.order.provider_order_id)
    return _forward(
        request=request,
        call=lambda: provider_client(provider=request.provider).cancel([pid]).get(pid),
        accepted=_cancel_accepted,
        rejected={},
        enqueue=outbox.enqueue_cancel,
    )


def refills_sync_plan(*, now: datetime | None = None, max_chunks: int | None = None) -> list[tuple[int, list[int]]]:
    now = now or timezone.now()
    max_chunks = max_chunks or int(_setting("ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER", 20))
    min_age = now - timedelta(seconds=float(_setting("ORDERS_SYNC_MIN_INTERVAL_SECONDS", 60)))
    plan: list[tuple[int, list[int]]] = []
    for provider_id in Provider.objects.order_by("id").values_list("id", flat=True):
        ids = list(
            Refill.objects.filter(
                provider_id=provider_id,
                state=RequestState.SENT,
                status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS),
            )
            .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=min_age))
            .order_by(F("last_checked_at").asc(nulls_first=True), "id")
            .values_list("id", flat=True)[: max_chunks * protocol.MAX_IDS]
        )
        if not ids:
            continue
        Refill.objects.filter(pk__in=ids).update(last_checked_at=now)
        plan.extend((provider_id, ids[i : i + protocol.MAX_IDS]) for i in range(0, len(ids), protocol.MAX_IDS))
    return plan


def refill_sync_chunk(*, provider_id: int, refill_ids: list[int]) -> dict[str, int]:
    counts = {"checked": 0, "changed": 0, "flagged": 0}
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        return counts
    found = list(
        Refill.objects.filter(
            pk__in=refill_ids[: protocol.MAX_IDS],
            provider=provider,
            state=RequestState.SENT,
            status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS),
        )
        .exclude(provider_refill_id__isnull=True)
        .values_list("id", "provider_refill_id", "order_id", "user_id")
    )
    rows = [(pk, str(rid)) for pk, rid, _order, _user in found]
    owners = {pk: (order_id, user_id) for pk, _rid, order_id, user_id in found}
    if not rows:
        return counts
    try:
        replies = provider_client(provider=provider).refill_statuses([rid for _, rid in rows])
    except (ProviderError, ValidationError) as exc:
        logger.warning("refill status sync at %s failed: %s", provider.name, exc)
        return counts
    now = timezone.now()
    for pk, rid in rows:
        reply = replies.get(rid)
        active = Refill.objects.filter(pk=pk, status__in=(RefillStatus.PENDING, RefillStatus.IN_PROGRESS))
        if not isinstance(reply, str):
            message = reply.message if isinstance(reply, ProviderError) else "missing from the reply"
            active.update(note=f"provider says: {message}"[:500], last_checked_at=now, updated_at=now)
            counts["flagged"] += 1
            continue
        # Terminal refill statuses never regress: the filter above is the guard.
        with transaction.atomic():
            changed = active.exclude(status=reply).update(status=reply, last_checked_at=now, updated_at=now, note="")
            if changed:
                order_id, user_id = owners[pk]
                refill_change_record(refill_id=pk, order_id=order_id, user_id=user_id, status=reply)
        counts["changed" if changed else "checked"] += 1
        if changed and reply in REFILL_TERMINAL_STATUSES:
            _refill_measure(refill_id=pk, completed=reply == RefillStatus.COMPLETED)
    return counts


def _refill_measure(*, refill_id: int, completed: bool) -> None:
    row = Refill.objects.filter(pk=refill_id).values_list("order__route_id", "order__service_id").first()
    if row is not None:
        quality_record_refill(route_id=row[0], service_id=row[1], completed=completed)


def cancel_request(*, user: User, order_id: int) -> CancelRequest | None:
    """Cancel an order: at once (with a refund) while it is still queued here, else by
    forwarding a request to the provider; the refund then follows its Canceled status.
    Returns the forwarded request, or None when the order was canceled here."""
    with transaction.atomic():
        order = first_or_none(Order.objects.select_for_update().filter(pk=order_id, user=user))
        if order is None:
            raise OrderError(_(protocol.ERR_INCORRECT_ORDER))
        refusal = cancel_refusal(order=order)
        if refusal is not None:
            raise OrderError(refusal)
        if order.state == State.QUEUED:
            # The compare-and-set loses against a worker that claimed it meanwhile.
            if not order_transition(
                order=order,
                state=State.CANCELED,
                status=Status.CANCELED,
                reason="canceled by the customer before it was sent",
                actor=user,
                changes={"customer_note": CANCELED_AT_REQUEST},
            ):
                raise OrderError(_("This order cannot be canceled right now"))
            return None
        assert order.provider_id is not None
        request = CancelRequest.objects.create(order=order, user=user, provider_id=order.provider_id)
        transaction.on_commit(partial(outbox.enqueue_cancel, pk=request.pk), robust=True)
    return request


REQUEST_SENT = "sent"
REQUEST_REQUEUE = "requeue"
REQUEST_REJECTED = "rejected"


def upstream_requests_resolve_unknown(
    *,
    model: type[Refill] | type[CancelRequest],
    request_ids: list[int],
    actor: User,
    resolution: str,
    provider_ids: str = "",
    reason: str = "",
) -> int:
    """Settle refill or cancel requests whose forwarding outcome is unknown, after staff asked
    the provider, all or none: the provider has them (refills: with its refill ids, pasted
    one a line and matched), it never got them and they are sent again, or they are refused."""
    if not reason.strip():
        raise OrderError("Say why (what the provider answered): it is kept on each request.")
    note = f"staff ({actor.get_username()}): {reason.strip()}"[:500]
    matched: dict[int, str] = {}
    if resolution == REQUEST_SENT and model is Refill:
        matched = provider_ids_match(order_ids=request_ids, text=provider_ids)
    with transaction.atomic():
        requests = list(model.objects.select_for_update().filter(pk__in=request_ids).order_by("pk"))
        for request in requests:
            if request.state != RequestState.UNKNOWN:
                raise OrderError(f"{request} is not in the unknown state. Nothing was changed.")
            changes: dict[str, Any] = {"note": note}
            if resolution == REQUEST_SENT:
                new = RequestState.SENT
                if model is Refill:
                    changes["provider_refill_id"] = matched[request.pk]
            elif resolution == REQUEST_REQUEUE:
                new = RequestState.QUEUED
                changes["next_attempt_at"] = timezone.now()
            elif resolution == REQUEST_REJECTED:
                new = RequestState.REJECTED
                if model is Refill:
                    changes["status"] = RefillStatus.REJECTED
            else:
                raise OrderError("Unknown resolution")
            try:
                with transaction.atomic():
                    _request_move(request, old=RequestState.UNKNOWN, new=new, **changes)
            except IntegrityError:
                raise OrderError(f"{request}: that provider id is already used. Nothing was changed.") from None
            if new == RequestState.QUEUED:
                enqueue = outbox.enqueue_refill if model is Refill else outbox.enqueue_cancel
                transaction.on_commit(partial(enqueue, pk=request.pk), robust=True)
    return len(requests)
