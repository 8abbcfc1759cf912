"""Which route an order goes to, and the health of routes (demotion and recovery).

Policies (Service.routing_policy): fixed priority, cheapest, or best measured delivery
within the service's price ceiling. Whatever the policy, a route whose cost for the order
is above what the customer paid is never chosen (margins are protected), nor one whose
provider is paused.

Health: a route whose provider fails `route_failures_to_demote` times in a row (did not
accept or answer an order, or canceled one it had accepted) within
`route_failure_window_minutes` is demoted: orders skip it. Every `route_probe_minutes` one
order may go to it (half-open); the first success brings it back, a failure keeps it
demoted until the next probe. Thresholds are Panel settings in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Case, F, Q, Value, When
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
) -> RoutingChoice:
    """Choose among `routes` (the service's usable routes this order has not tried yet)."""
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


def route_health_failure(*, route: Route, why: str, now: datetime | None = None) -> bool:
    """Count a failure of this route's provider; True when it demoted the route now."""
    now = now or timezone.now()
    row = panel_settings_get()
    since = now - timedelta(minutes=row.route_failure_window_minutes)
    in_window = Q(fail_streak_since__gte=since)
    Route.objects.filter(pk=route.pk).update(
        fail_streak=Case(When(in_window, then=F("fail_streak") + 1), default=Value(1)),
        fail_streak_since=Case(When(in_window, then=F("fail_streak_since")), default=Value(now)),
    )
    demoted = Route.objects.filter(
        pk=route.pk,
        demoted_at__isnull=True,
        fail_streak__gte=row.route_failures_to_demote,
        fail_streak_since__gte=since,
    ).update(
        demoted_at=now,
        demoted_reason=f"{row.route_failures_to_demote} failures in a row: {why}"[:500],
        probe_after=now + timedelta(minutes=row.route_probe_minutes),
    )
    if demoted:
        logger.warning("route %s (service %s) demoted: %s", route.pk, route.service_id, why)
    return demoted == 1


def route_health_success(*, route_id: int) -> bool:
    """The provider accepted or delivered: the streak ends and a demoted route recovers.
    One UPDATE that matches no row on the usual path; True when it changed the route."""
    reset = Route.objects.filter(Q(demoted_at__isnull=False) | Q(fail_streak__gt=0), pk=route_id).update(
        demoted_at=None, demoted_reason="", probe_after=None, fail_streak=0, fail_streak_since=None
    )
    return reset == 1
