"""Which route an order goes to, and the health of routes (demotion and recovery).

Policies (Service.routing_policy): fixed priority, cheapest, or best measured delivery
within the service's price ceiling. Whatever the policy, a route whose cost for the order
is above what the customer paid is never chosen (margins are protected), nor one whose
provider is paused. Placing an order and each submission attempt choose the same way.

Health, judged over a window of `route_failure_window_minutes` that opens at a route's
first failure (no window, no writes: a healthy route costs one UPDATE that matches nothing
per outcome), on two counts:

- sending: every order sent to the route, and whether its provider failed to accept or
  answer it. With at least `route_min_attempts` sends in the window and a failed share of
  `route_failure_percent` or more, the route is demoted; a probe that is accepted brings
  it back.
- delivery: every order of the route that finished or stalled, and whether it was not
  delivered: still pending `route_stall_minutes` after it was accepted (found by the status
  sync, counted once per order), canceled by the provider, or partial. With at least
  `route_min_attempts` outcomes and an undelivered share of `route_undelivered_percent` or
  more, the route is demoted; the first of its orders that starts delivering after that
  brings it back.

A demoted route is skipped; every `route_probe_minutes` one order may go to it (half-open).
Thresholds are Panel settings in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    F,
    FloatField,
    PositiveIntegerField,
    Q,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from .models import Route, RoutingPolicy, Service
from .pricing import cost_per_1000
from .quality import is_measured, quality_of
from .services import panel_settings_get

logger = logging.getLogger(__name__)


@dataclass
class RoutingChoice:
    route: Route | None
    policy: str
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)
    probe: bool = False
    # Nothing to send to now, but a paused provider or a demoted route may take it later.
    wait_until: datetime | None = None


def _expected_seconds(route: Route, quantity: int) -> float | None:
    figures = quality_of(route)
    if not is_measured(figures) or figures is None or figures.start_p50 is None:
        return None
    per1000 = figures.per1000_p50 or 0
    seconds = figures.start_p50 + per1000 * quantity / 1000
    delivered = (figures.completed + figures.partial) / figures.finished if figures.finished else 0
    return seconds / max(delivered, 0.05)


def _rank_key(policy: str, route: Route, unit_cost: Decimal, quantity: int) -> tuple[Any, ...]:
    if policy == RoutingPolicy.CHEAPEST:
        return (unit_cost, route.priority, route.pk)
    if policy == RoutingPolicy.BEST:
        expected = _expected_seconds(route, quantity)
        # Measured routes first, fastest expected delivery first; unmeasured ones by priority.
        return (expected is None, expected or 0, route.priority, route.pk)
    return (route.priority, route.pk)


def route_choose(
    *,
    service: Service,
    routes: list[Route],
    charge: Decimal,
    quantity: int,
    cost_of: Callable[[Route], Decimal],
    now: datetime | None = None,
    claim_probe: bool = True,
) -> RoutingChoice:
    """Choose among `routes` (the service's usable routes this order has not tried yet).

    With claim_probe=False (placing: the order is priced, not sent yet) a demoted route is
    passed over even when its probe is due, and no probe is claimed."""
    now = now or timezone.now()
    policy = service.routing_policy or RoutingPolicy.PRIORITY
    notes: list[dict[str, Any]] = []
    ranked: list[tuple[tuple[Any, ...], Route, dict[str, Any]]] = []
    waits: list[datetime] = []
    for route in routes:
        upstream = route.upstream
        provider = upstream.provider
        unit_cost = cost_per_1000(upstream_rate=upstream.rate, exchange_rate=provider.exchange_rate)
        cost = cost_of(route)
        note: dict[str, Any] = {"route": route.pk, "provider": provider.name, "cost": str(cost)}
        notes.append(note)
        if not provider.is_usable:
            note["skipped"] = "provider paused"
            waits.append(now + timedelta(seconds=float(getattr(settings, "ORDERS_PAUSED_RETRY_SECONDS", 300))))
        elif cost > charge:
            note["skipped"] = f"would sell below cost ({cost} > charge {charge})"
        elif (
            policy == RoutingPolicy.BEST
            and service.routing_max_cost is not None
            and unit_cost > service.routing_max_cost
        ):
            note["skipped"] = f"above the price ceiling ({unit_cost} > {service.routing_max_cost} per 1000)"
        elif route.demoted_at is not None and route.probe_after is not None and route.probe_after > now:
            note["skipped"] = f"demoted ({route.demoted_reason}); next probe {route.probe_after:%H:%M:%S}"
            waits.append(route.probe_after)
        else:
            key = _rank_key(policy, route, unit_cost, quantity)
            if policy == RoutingPolicy.BEST:
                expected = _expected_seconds(route, quantity)
                note["expected_seconds"] = None if expected is None else round(expected)
            ranked.append((key, route, note))
    ranked.sort(key=lambda item: item[0])
    for rank, (_, _route, note) in enumerate(ranked, start=1):
        note["rank"] = rank
    for _, route, note in ranked:
        if route.demoted_at is None:
            reason = _reason(policy, route, note, first=ranked[0][1] is route)
            return RoutingChoice(route=route, policy=policy, reason=reason, candidates=notes)
        if not claim_probe:
            note["skipped"] = f"demoted ({route.demoted_reason}); its probe is left to submission"
            continue
        if route_probe_claim(route=route, now=now):
            reason = f"probe of demoted route {route.pk} ({note['provider']}): {route.demoted_reason}"
            return RoutingChoice(route=route, policy=policy, reason=reason, candidates=notes, probe=True)
        note["skipped"] = "demoted; another order is probing it"
        waits.append(now + timedelta(minutes=1))
    if waits:
        return RoutingChoice(
            route=None,
            policy=policy,
            reason="only paused or demoted routes left",
            candidates=notes,
            wait_until=min(waits),
        )
    below = [n for n in notes if "below cost" in n.get("skipped", "")]
    reason = "every route would sell below cost" if below and len(below) == len(notes) else "no route left to try"
    return RoutingChoice(route=None, policy=policy, reason=reason, candidates=notes)


def _reason(policy: str, route: Route, note: dict[str, Any], *, first: bool) -> str:
    passed = "" if first else " (routes ranked above it are demoted)"
    where = f"route {route.pk} ({note['provider']}, cost {note['cost']})"
    if policy == RoutingPolicy.CHEAPEST:
        return f"cheapest: {where}{passed}"
    if policy == RoutingPolicy.BEST:
        expected = note.get("expected_seconds")
        measured = f"expected {expected} s" if expected is not None else "not measured yet, by priority"
        return f"best measured delivery: {where}, {measured}{passed}"
    return f"priority {route.priority}: {where}{passed}"


# --- Health -------------------------------------------------------------------------------------
def route_probe_claim(*, route: Route, now: datetime) -> bool:
    """Let one order through to a demoted route whose probe time has come (compare-and-set,
    so concurrent submissions send one probe)."""
    probe = timedelta(minutes=panel_settings_get().route_probe_minutes)
    claimed = Route.objects.filter(pk=route.pk, demoted_at__isnull=False, probe_after__lte=now).update(
        probe_after=now + probe
    )
    return claimed == 1


def route_probe_release(*, route: Route, now: datetime) -> None:
    """Give back a probe claimed at `now` that was not sent (the order it was claimed for
    was taken by another worker meanwhile), so the next order probes the route at once
    instead of after another probe interval."""
    probe = timedelta(minutes=panel_settings_get().route_probe_minutes)
    Route.objects.filter(pk=route.pk, demoted_at__isnull=False, probe_after=now + probe).update(probe_after=now)


SENDING = "sending"
DELIVERY = "delivery"
_INT: PositiveIntegerField[int, int] = PositiveIntegerField()
_TIME: DateTimeField[datetime, datetime] = DateTimeField()
_COUNTS = {
    SENDING: ("send_attempts", "send_failures", "send_until"),
    DELIVERY: ("delivery_outcomes", "delivery_failures", "delivery_until"),
}


def route_health_failure(
    *, route: Route, why: str, now: datetime | None = None, kind: str = SENDING, count: int = 1
) -> bool:
    """Count `count` failures of this route (of sending or of delivery) in its window, opening
    a window when none is open; True when that demoted the route now. Two UPDATEs."""
    now = now or timezone.now()
    row = panel_settings_get()
    total, failed, until = _COUNTS[kind]
    open_window = Q(**{f"{until}__gt": now})
    Route.objects.filter(pk=route.pk).update(
        **{
            total: Case(When(open_window, then=F(total) + count), default=Value(count), output_field=_INT),
            failed: Case(When(open_window, then=F(failed) + count), default=Value(count), output_field=_INT),
            until: Case(
                When(open_window, then=F(until)),
                default=Value(now + timedelta(minutes=row.route_failure_window_minutes)),
                output_field=_TIME,
            ),
        }
    )
    share = row.route_failure_percent if kind == SENDING else row.route_undelivered_percent
    what = "sends not accepted or answered" if kind == SENDING else "orders not delivered"
    threshold = F(total) * Value(share / 100, output_field=FloatField())
    demoted = Route.objects.filter(
        pk=route.pk,
        demoted_at__isnull=True,
        **{f"{until}__gt": now, f"{total}__gte": row.route_min_attempts, f"{failed}__gte": threshold},
    ).update(
        demoted_at=now,
        demoted_for=kind,
        demoted_reason=Concat(
            Cast(failed, CharField()),
            Value(" of "),
            Cast(total, CharField()),
            Value(f" {what} within {row.route_failure_window_minutes} min (at least {share} percent): {why}"[:400]),
        ),
        probe_after=now + timedelta(minutes=row.route_probe_minutes),
    )
    if demoted:
        logger.warning("route %s (service %s) demoted for %s: %s", route.pk, route.service_id, kind, why)
    return demoted == 1


def route_health_success(*, route_id: int, kind: str = SENDING, now: datetime | None = None) -> bool:
    """The provider accepted (SENDING) or delivered (DELIVERY) an order of this route: counted
    while a window is open, and a route demoted for this reason recovers (its counts start
    afresh). One UPDATE that matches no row on a healthy route; True when it changed one."""
    now = now or timezone.now()
    total, failed, until = _COUNTS[kind]
    recovering = Q(demoted_at__isnull=False, demoted_for=kind)
    counting = Q(**{f"{failed}__gt": 0, f"{until}__gt": now})
    updated = Route.objects.filter(recovering | counting, pk=route_id).update(
        **{
            total: Case(When(recovering, then=Value(0)), default=F(total) + 1, output_field=_INT),
            failed: Case(When(recovering, then=Value(0)), default=F(failed), output_field=_INT),
            until: Case(When(recovering, then=Value(None)), default=F(until), output_field=_TIME),
        },
        demoted_at=Case(When(recovering, then=Value(None)), default=F("demoted_at"), output_field=_TIME),
        demoted_for=Case(When(recovering, then=Value("")), default=F("demoted_for"), output_field=CharField()),
        demoted_reason=Case(When(recovering, then=Value("")), default=F("demoted_reason"), output_field=CharField()),
        probe_after=Case(When(recovering, then=Value(None)), default=F("probe_after"), output_field=_TIME),
    )
    return updated == 1


def route_health_delivering(*, route_id: int) -> bool:
    """An order of this route started delivering: a route demoted for not delivering
    recovers. One UPDATE that matches no row unless the route is so demoted."""
    recovered = Route.objects.filter(pk=route_id, demoted_at__isnull=False, demoted_for=DELIVERY).update(
        demoted_at=None,
        demoted_for="",
        demoted_reason="",
        probe_after=None,
        delivery_outcomes=0,
        delivery_failures=0,
        delivery_until=None,
    )
    if recovered:
        logger.info("route %s recovered: an order started delivering", route_id)
    return recovered == 1
