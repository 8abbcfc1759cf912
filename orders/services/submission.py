"""Submission exactly once upstream, and the sweeper for lost messages and crashed workers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from catalog.models import Route
from catalog.pricing import cost_per_1000
from catalog.quality import quality_record_failure
from catalog.routing import (
    RoutingChoice,
    route_choose,
    route_health_failure,
    route_health_success,
    route_probe_release,
)
from catalog.selectors import service_routes_for_submission
from kernel import protocol
from kernel.db import first_or_none
from providers.client import NotSent, Rejected, UnknownOutcome
from providers.models import Provider
from providers.services import provider_client, provider_pause
from siteconf.selectors import site_settings

from ..models import (
    CancelRequest,
    Order,
    Refill,
    RequestState,
    RoutingDecision,
    State,
    Status,
)

if TYPE_CHECKING:
    pass
from . import outbox
from .base import SubmitOutcome, _setting
from .parsing import order_amount
from .transitions import order_transition, orders_release_held

logger = logging.getLogger(__name__)


def _retry_delay(attempts: int) -> float:
    base = float(_setting("ORDERS_RETRY_BASE_SECONDS", 15))
    cap = float(_setting("ORDERS_RETRY_MAX_SECONDS", 900))
    return min(cap, base * float(2 ** max(attempts - 1, 0)))


def order_submit(*, order_id: int) -> SubmitOutcome:
    """Send one queued order to its provider, exactly once. Returns what happened.

    Safe to run any number of times for the same order, concurrently: only the caller
    that wins the `queued → sending` compare-and-set talks to the provider.
    """
    # The order row alone: its routes are read by service id, and the customer is needed
    # only for a refund (then read once).
    order = first_or_none(Order.objects.filter(pk=order_id))
    if order is None or order.state != State.QUEUED:
        return SubmitOutcome.SKIPPED
    now = timezone.now()
    tried = set(order.routes_tried or [])
    service, routes = service_routes_for_submission(service_id=order.service_id)
    untried = [r for r in routes if r.pk not in tried]

    def cost_of(route: Route) -> Decimal:
        rate = cost_per_1000(upstream_rate=route.upstream.rate, exchange_rate=route.upstream.provider.exchange_rate)
        return order_amount(rate=rate, quantity=order.quantity, billing=order.billing)

    choice = (
        route_choose(
            service=service, routes=untried, charge=order.charge, quantity=order.quantity, cost_of=cost_of, now=now
        )
        if service is not None and untried
        else None
    )
    if choice is not None and choice.route is None and choice.wait_until is not None:
        # Only paused providers or demoted routes are left: wait for staff to resume one,
        # or for the route's next probe; keep the money.
        Order.objects.filter(pk=order.pk, state=State.QUEUED).update(next_attempt_at=max(choice.wait_until, now))
        return SubmitOutcome.WAITING
    if choice is None or choice.route is None:
        why = choice.reason if choice is not None else "no route left to try"
        if not order_transition(order=order, state=State.SENDING, reason=why):
            return SubmitOutcome.SKIPPED
        if choice is not None:
            _decision_record(order=order, choice=choice)
        note = order.customer_note or "No active providers for this service"
        order_transition(
            order=order,
            state=State.REJECTED,
            status=Status.CANCELED,
            reason=f"{why}: canceled and refunded",
            changes={"customer_note": note},
        )
        return SubmitOutcome.REJECTED

    route = choice.route
    upstream = route.upstream
    provider = upstream.provider
    attempts = order.attempts + 1
    cost = cost_of(route)
    claimed = order_transition(
        order=order,
        state=State.SENDING,
        reason=f"sending to {provider.name} (attempt {attempts})",
        changes={
            "route": route,
            "provider": provider,
            "external_service_id": upstream.external_id,
            "provider_rate": upstream.rate,
            "cost": cost,
            "attempts": attempts,
            "sending_started_at": now,
            "next_attempt_at": None,
        },
    )
    if not claimed:
        if choice.probe:
            route_probe_release(route=route, now=now)
        return SubmitOutcome.SKIPPED
    _decision_record(order=order, choice=choice)

    # Outside any transaction: the network call may take up to the read timeout.
    try:
        client = provider_client(provider=provider)
        provider_order_id = client.add(order_ref=order.pk, service=upstream.external_id, **order.fields)
    except (NotSent, ValidationError) as exc:
        message = exc.message if isinstance(exc, NotSent) else "; ".join(exc.messages)
        demoted = _route_failed(route=route, why=f"not sent: {message}")
        return _submit_retry_later(order=order, reason=f"not sent to {provider.name}: {message}", now=demoted)
    except Rejected as exc:
        if exc.message not in NOT_THE_PROVIDERS_FAULT and not exc.is_provider_side:
            _route_failed(route=route, why=f"rejected: {exc.message}")
        return _submit_rejected(order=order, route=route, provider=provider, exc=exc, others=len(untried) > 1)
    except UnknownOutcome as exc:
        _route_failed(route=route, why=f"no answer: {exc.message}")
        _submit_unknown(order=order, reason=f"{provider.name} may have placed it: {exc.message}")
        return SubmitOutcome.UNKNOWN
    except Exception as exc:
        # A bug or a time limit mid-call: the request may have gone out.
        logger.exception("order %s: unexpected error while sending", order.pk)
        _submit_unknown(order=order, reason=f"unexpected error while sending: {exc.__class__.__name__}")
        return SubmitOutcome.UNKNOWN
    if route.demoted_at is not None or (route.send_until is not None and route.send_until > now):
        # Counted only while the route is demoted or has a window open (else nothing to do).
        changed = route_health_success(route_id=route.pk)
        if changed and route.demoted_at is not None:
            orders_release_held(service_id=order.service_id)  # the probe brought the route back
    return _submit_accepted(order=order, provider=provider, provider_order_id=provider_order_id)


# Rejections that say something about the order, not about the provider: they never count
# towards demoting a route (a customer could otherwise demote routes with bad links).
NOT_THE_PROVIDERS_FAULT = frozenset(
    {protocol.ERR_NOT_ENOUGH_FUNDS, protocol.ERR_INCORRECT_LINK, protocol.ERR_DUPLICATE_LINK}
)


def _route_failed(*, route: Route, why: str) -> bool:
    """Count the failure in the route's figures and health. True when the route is (now)
    demoted, so the order's next attempt goes to another route without waiting."""
    quality_record_failure(route=route)
    return route_health_failure(route=route, why=why) or route.demoted_at is not None


def _decision_record(*, order: Order, choice: RoutingChoice) -> None:
    RoutingDecision.objects.create(
        order_id=order.pk,
        stage=RoutingDecision.Stage.SENDING,
        route=choice.route,
        policy=choice.policy,
        reason=choice.reason[:1000],
        candidates=choice.candidates,
    )


def _submit_accepted(*, order: Order, provider: Provider, provider_order_id: str) -> SubmitOutcome:
    changes = {"provider_order_id": provider_order_id, "sent_at": timezone.now(), "customer_note": ""}
    reason = f"accepted by {provider.name} as #{provider_order_id}"
    try:
        if order_transition(order=order, state=State.SENT, reason=reason, changes=changes):
            return SubmitOutcome.SENT
        # The stuck-order sweeper moved it to unknown while we waited: we now know better.
        order.refresh_from_db()
        if order.state == State.UNKNOWN and order_transition(
            order=order, state=State.SENT, reason=reason + " (after the sending timeout)", changes=changes
        ):
            return SubmitOutcome.SENT
    except IntegrityError:
        _submit_unknown(
            order=order,
            reason=f"{provider.name} answered with order id {provider_order_id}, already used by another order",
        )
        return SubmitOutcome.UNKNOWN
    logger.error("order %s: accepted as %s but the row moved to %s", order.pk, provider_order_id, order.state)
    return SubmitOutcome.LOST


def _submit_unknown(*, order: Order, reason: str) -> None:
    order.refresh_from_db()
    if order.state == State.SENDING:
        order_transition(order=order, state=State.UNKNOWN, reason=reason, changes={"sync_note": reason[:500]})


def _submit_retry_later(*, order: Order, reason: str, now: bool = False) -> SubmitOutcome:
    delay = 0.0 if now else _retry_delay(order.attempts)
    moved = order_transition(
        order=order,
        state=State.QUEUED,
        reason=f"{reason}; retrying in {int(delay)} s",
        changes={"next_attempt_at": timezone.now() + timedelta(seconds=delay), "sending_started_at": None},
    )
    if moved:
        outbox.enqueue_submit(order_id=order.pk, countdown=delay)
    return SubmitOutcome.RETRY


def _submit_waiting_for_funds(*, order: Order, provider: Provider) -> SubmitOutcome:
    """The provider cannot fund this order from our account. Only this order waits: it
    may be larger than our balance there while smaller orders still go through, so the
    provider is not paused for everyone. The customer may cancel it meanwhile."""
    base = float(_setting("ORDERS_FUNDS_RETRY_SECONDS", 300))
    delay = min(float(_setting("ORDERS_FUNDS_RETRY_MAX_SECONDS", 3600)), base * (2 ** max(order.attempts - 1, 0)))
    moved = order_transition(
        order=order,
        state=State.QUEUED,
        reason=f"{provider.name} has not enough funds on our account for it (cost {order.cost}); "
        f"retrying in {int(delay)} s",
        changes={
            "sending_started_at": None,
            "next_attempt_at": timezone.now() + timedelta(seconds=delay),
            "customer_note": "Waiting for the provider. You can cancel this order for a full refund.",
        },
    )
    if moved:
        outbox.enqueue_submit(order_id=order.pk, countdown=delay)
    # One alert per provider an hour, however many orders wait.
    if cache.add(f"orders:funds-alert:{provider.pk}", 1, timeout=3600):
        logger.warning("provider %s has not enough funds for order %s", provider.name, order.pk)
        mail_admins(
            f"Provider {provider.name}: not enough funds",
            f"Order #{order.pk} (cost {order.cost} {site_settings().base_currency}) waits because our balance at "
            f"{provider.name} cannot pay for it. Orders it can pay for still go through. Add funds there; "
            "waiting orders are retried on their own.",
        )
    return SubmitOutcome.WAITING_FUNDS


def _submit_rejected(*, order: Order, route: Route, provider: Provider, exc: Rejected, others: bool) -> SubmitOutcome:
    if exc.message == protocol.ERR_NOT_ENOUGH_FUNDS:
        return _submit_waiting_for_funds(order=order, provider=provider)
    if exc.is_provider_side:
        # Our account at the provider is the problem, not the customer's order.
        provider_pause(provider=provider, reason=exc.message)
        moved = order_transition(
            order=order,
            state=State.QUEUED,
            reason=f"{provider.name} refused our account ({exc.message}); provider paused",
            changes={"sending_started_at": None, "next_attempt_at": timezone.now()},
        )
        if moved:
            outbox.enqueue_submit(order_id=order.pk)  # another route may take it; else it waits
        return SubmitOutcome.PAUSED
    tried = [*order.routes_tried, route.pk]
    if others:
        moved = order_transition(
            order=order,
            state=State.QUEUED,
            reason=f"rejected by {provider.name}: {exc.message}; trying the next route",
            changes={"routes_tried": tried, "sending_started_at": None, "next_attempt_at": timezone.now()},
        )
        if moved:
            outbox.enqueue_submit(order_id=order.pk)
        return SubmitOutcome.NEXT_ROUTE
    order_transition(
        order=order,
        state=State.REJECTED,
        status=Status.CANCELED,
        reason=f"rejected by {provider.name}: {exc.message}; canceled and refunded",
        changes={"routes_tried": tried, "customer_note": exc.message[:500], "sending_started_at": None},
    )
    return SubmitOutcome.REJECTED


def orders_sweep(*, now: datetime | None = None, batch: int | None = None) -> dict[str, int]:
    """Re-enqueue queued orders that are due, and give up on orders stuck in `sending`."""
    now = now or timezone.now()
    batch = batch or int(_setting("ORDERS_SWEEP_BATCH", 500))
    lease = now + timedelta(seconds=float(_setting("ORDERS_SWEEP_LEASE_SECONDS", 300)))
    due_ids = list(
        Order.objects.filter(state=State.QUEUED, created_at__lte=now - timedelta(seconds=60))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:batch]
    )
    if due_ids:
        # A lease, so the next sweep does not enqueue the same orders while these wait.
        Order.objects.filter(pk__in=due_ids, state=State.QUEUED).update(next_attempt_at=lease)
        for order_id in due_ids:
            outbox.enqueue_submit(order_id=order_id)

    timeout = timedelta(seconds=float(_setting("ORDERS_SENDING_TIMEOUT_SECONDS", 600)))
    stuck = list(
        Order.objects.filter(state=State.SENDING, sending_started_at__lte=now - timeout).order_by("id")[:batch]
    )
    for order in stuck:
        order_transition(
            order=order,
            state=State.UNKNOWN,
            reason=f"no answer recorded {int(timeout.total_seconds())} s after sending began; the worker may have died mid-call",
            changes={"sync_note": "stuck in sending"},
        )

    refills = _requests_sweep(model=Refill, now=now, batch=batch, lease=lease, timeout=timeout, task="refill")
    cancels = _requests_sweep(model=CancelRequest, now=now, batch=batch, lease=lease, timeout=timeout, task="cancel")
    return {"requeued": len(due_ids), "unknown": len(stuck), "refills": refills, "cancels": cancels}


def _requests_sweep(
    *,
    model: type[Refill] | type[CancelRequest],
    now: datetime,
    batch: int,
    lease: datetime,
    timeout: timedelta,
    task: str,
) -> int:
    ids = list(
        model.objects.filter(state=RequestState.QUEUED, created_at__lte=now - timedelta(seconds=60))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .values_list("id", flat=True)[:batch]
    )
    if ids:
        model.objects.filter(pk__in=ids, state=RequestState.QUEUED).update(next_attempt_at=lease)
        for pk in ids:
            (outbox.enqueue_refill if task == "refill" else outbox.enqueue_cancel)(pk=pk)
    model.objects.filter(state=RequestState.SENDING, sending_started_at__lte=now - timeout).update(
        state=RequestState.UNKNOWN, note="stuck in sending", updated_at=now
    )
    return len(ids)
