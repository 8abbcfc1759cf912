"""Measured quality of routes and services, from the panel's own orders.

Written incrementally, never by scanning orders:

- `quality_record_final` runs inside the transaction that moves an accepted order to a final
  status (orders.services.transitions calls it): it adds the order to its route's row of the
  day (`RouteDay`): its outcome and two durations, each into a histogram of fixed
  log-spaced bins (BINS_PER_OCTAVE bins per doubling, from 1 s to about 300 days);
- `quality_record_failure` counts a provider that did not accept or answer an order;
- `quality_record_refill` counts a refill that ended;
- `quality_refresh` (a beat task every minute) re-summarises the routes whose rows changed
  since its cursor, and every route once a day as the window rolls, into `RouteQuality` and
  `ServiceQuality`: the last WINDOW days, percentiles read from the summed histograms.

The durations: time to start = placing → the first status after Pending; time to complete
per 1000 = start → final status, per 1000 units delivered (drip-feed and subscriptions are
paced by the customer, so they count in the shares but not in the durations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import zip_longest
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import (
    FigureShares,
    QualityCursor,
    QualityFigures,
    Route,
    RouteDay,
    RouteQuality,
    Service,
    ServiceQuality,
)

BINS_PER_OCTAVE = 4
BINS = 100  # bin 0: under 1 s; bin k: [2^((k-1)/4), 2^(k/4)) s; the last bin holds the rest
# Rows changed this long before the cursor are read again: a transaction may commit a row
# stamped before the cursor moved past it.
CURSOR_OVERLAP = timedelta(minutes=2)

FINAL = ("Completed", "Partial", "Canceled")


def window_days() -> int:
    return int(getattr(settings, "QUALITY_WINDOW_DAYS", 30))


def min_sample() -> int:
    return int(getattr(settings, "QUALITY_MIN_SAMPLE", 10))


# --- Histograms ---------------------------------------------------------------------------------
def bin_of(seconds: float) -> int:
    if seconds < 1:
        return 0
    return min(BINS - 1, math.floor(BINS_PER_OCTAVE * math.log2(seconds)) + 1)


def bin_value(index: int) -> float:
    """The value a bin stands for: the geometric middle of its bounds (0 for bin 0)."""
    if index == 0:
        return 0.0
    return float(2 ** ((index - 0.5) / BINS_PER_OCTAVE))


def hist_add(hist: list[int], seconds: float) -> list[int]:
    index = bin_of(seconds)
    if len(hist) <= index:
        hist = hist + [0] * (index + 1 - len(hist))
    hist[index] += 1
    return hist


def hist_sum(hists: Iterable[Sequence[int]]) -> list[int]:
    # Column sums in C (zip_longest, sum): a full summary adds up tens of thousands of rows.
    return [sum(column) for column in zip_longest(*hists, fillvalue=0)]


def percentile(hist: Sequence[int], fraction: float) -> int | None:
    """The nearest-rank percentile (in whole seconds) of the values counted in `hist`."""
    count = sum(hist)
    if not count:
        return None
    rank = max(1, math.ceil(fraction * count))
    seen = 0
    for index, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return round(bin_value(index))
    return None  # pragma: no cover


# --- Recording ----------------------------------------------------------------------------------
def _day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def _ensure_row(*, route_id: int, service_id: int, day: date, now: datetime) -> None:
    RouteDay.objects.bulk_create(
        [RouteDay(route_id=route_id, service_id=service_id, day=day, updated_at=now)], ignore_conflicts=True
    )


@dataclass(frozen=True)
class Finished:
    """What quality needs of an order that reached a final status."""

    route_id: int
    service_id: int
    status: str
    placed_at: datetime
    started_at: datetime | None
    finished_at: datetime
    quantity: int
    remains: int | None
    paced: bool  # drip-feed or subscription: no durations


def quality_record_final(*, order: Finished) -> None:
    """Count an accepted order that reached a final status, in the caller's transaction."""
    if order.status not in FINAL:
        return
    now = order.finished_at
    day = _day(now)
    _ensure_row(route_id=order.route_id, service_id=order.service_id, day=day, now=now)
    row = RouteDay.objects.select_for_update().get(route_id=order.route_id, day=day)
    row.accepted += 1
    setattr(row, order.status.lower(), getattr(row, order.status.lower()) + 1)
    fields = ["accepted", order.status.lower(), "updated_at"]
    started = order.started_at
    if started is None and order.status != "Canceled":
        started = order.finished_at  # went from Pending straight to its end
    if started is not None and not order.paced:
        row.start_hist = hist_add(list(row.start_hist), max(0.0, (started - order.placed_at).total_seconds()))
        fields.append("start_hist")
        delivered = order.quantity - (order.remains or 0) if order.status != "Canceled" else 0
        if delivered > 0:
            seconds = max(0.0, (order.finished_at - started).total_seconds()) * 1000 / delivered
            row.per1000_hist = hist_add(list(row.per1000_hist), seconds)
            fields.append("per1000_hist")
    row.updated_at = now
    row.save(update_fields=fields)


def quality_record_failure(*, route: Route, now: datetime | None = None) -> None:
    """A provider did not accept or answer an order sent by this route."""
    now = now or timezone.now()
    _ensure_row(route_id=route.pk, service_id=route.service_id, day=_day(now), now=now)
    RouteDay.objects.filter(route_id=route.pk, day=_day(now)).update(failures=F("failures") + 1, updated_at=now)


def quality_record_refill(*, route_id: int | None, service_id: int, completed: bool) -> None:
    """A refill of an order bought by this route ended (completed or rejected)."""
    if route_id is None or not Route.objects.filter(pk=route_id).exists():
        return
    now = timezone.now()
    _ensure_row(route_id=route_id, service_id=service_id, day=_day(now), now=now)
    RouteDay.objects.filter(route_id=route_id, day=_day(now)).update(
        refills=F("refills") + 1, refills_completed=F("refills_completed") + int(completed), updated_at=now
    )


# --- Summaries ----------------------------------------------------------------------------------
COUNTS = ("completed", "partial", "canceled", "accepted", "failures", "refills", "refills_completed")


@dataclass
class _Sums:
    counts: dict[str, int]
    start: list[int]
    per1000: list[int]


def _sums(rows: list[Any]) -> _Sums:
    """Counts and histograms added up over RouteDay rows (or over other _Sums)."""
    if rows and isinstance(rows[0], _Sums):
        return _Sums(
            counts={name: sum(r.counts[name] for r in rows) for name in COUNTS},
            start=hist_sum(r.start for r in rows),
            per1000=hist_sum(r.per1000 for r in rows),
        )
    return _Sums(
        counts={name: sum(getattr(r, name) for r in rows) for name in COUNTS},
        start=hist_sum(r.start_hist for r in rows),
        per1000=hist_sum(r.per1000_hist for r in rows),
    )


def _figures(sums: _Sums, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = dict(sums.counts)
    values["finished"] = values["completed"] + values["partial"] + values["canceled"]
    start, per1000 = sums.start, sums.per1000
    values.update(
        started=sum(start),
        start_p50=percentile(start, 0.5),
        start_p90=percentile(start, 0.9),
        delivered=sum(per1000),
        per1000_p50=percentile(per1000, 0.5),
        per1000_p90=percentile(per1000, 0.9),
        computed_at=now,
    )
    return values


FIGURE_FIELDS = (*COUNTS, "finished", "started", "start_p50", "start_p90", "delivered", "per1000_p50", "per1000_p90")


def quality_summarise(*, route_ids: Iterable[int], now: datetime | None = None) -> int:
    """Recompute the window's figures of these routes and of their services."""
    now = now or timezone.now()
    first_day = _day(now) - timedelta(days=window_days() - 1)
    route_ids = set(route_ids)
    if not route_ids:
        return 0
    service_ids = set(Route.objects.filter(pk__in=route_ids).values_list("service_id", flat=True))
    rows = list(
        RouteDay.objects.filter(service_id__in=service_ids, day__gte=first_day).only(
            "route_id", "service_id", *COUNTS, "start_hist", "per1000_hist"
        )
    )
    # Each route's rows are added up once; a service's figures are the sum of its routes'.
    rows_of: dict[int, list[RouteDay]] = {}
    service_of: dict[int, int] = {}
    for row in rows:
        rows_of.setdefault(row.route_id, []).append(row)
        service_of[row.route_id] = row.service_id
    route_sums = {pk: _sums(r) for pk, r in rows_of.items()}
    by_service: dict[int, list[_Sums]] = {pk: [] for pk in service_ids}
    for pk, sums in route_sums.items():
        by_service[service_of[pk]].append(sums)
    empty = _sums([])
    existing_routes = set(Route.objects.filter(pk__in=route_ids).values_list("pk", flat=True))
    with transaction.atomic():
        RouteQuality.objects.bulk_create(
            [
                RouteQuality(route_id=pk, **_figures(route_sums.get(pk, empty), now))
                for pk in route_ids
                if pk in existing_routes
            ],
            update_conflicts=True,
            unique_fields=["route"],
            update_fields=[*FIGURE_FIELDS, "computed_at"],
        )
        ServiceQuality.objects.bulk_create(
            [ServiceQuality(service_id=pk, **_figures(_sums(r) if r else empty, now)) for pk, r in by_service.items()],
            update_conflicts=True,
            unique_fields=["service"],
            update_fields=[*FIGURE_FIELDS, "computed_at"],
        )
    return len(route_ids)


def quality_refresh(*, now: datetime | None = None, batch: int = 500) -> int:
    """The beat task's work: summarise what changed since the cursor (and, on a new day,
    every route that has figures, so the window rolls). Returns how many routes."""
    now = now or timezone.now()
    cursor = QualityCursor.objects.order_by("pk").first()
    if cursor is None:
        cursor = QualityCursor.objects.create(at=now - timedelta(days=window_days()), day=_day(now) - timedelta(1))
    changed = set(
        RouteDay.objects.filter(updated_at__gt=cursor.at - CURSOR_OVERLAP, updated_at__lte=now)
        .values_list("route_id", flat=True)
        .distinct()
    )
    if cursor.day != _day(now):
        changed |= set(RouteQuality.objects.values_list("route_id", flat=True))
    done = 0
    ordered = sorted(changed)
    for i in range(0, len(ordered), batch):
        done += quality_summarise(route_ids=ordered[i : i + batch], now=now)
    QualityCursor.objects.filter(pk=cursor.pk).update(at=now, day=_day(now))
    return done


# --- Reading ------------------------------------------------------------------------------------
def quality_of(obj: Service | Route) -> QualityFigures | None:
    """The figures of a service or route (select_related("quality") avoids the query)."""
    try:
        return obj.quality  # type: ignore[union-attr, no-any-return]
    except ObjectDoesNotExist:
        return None


@dataclass(frozen=True, slots=True)
class FiguresRow(FigureShares):
    """A service's or route's figures read as plain values (`.values()`), for lists of a
    thousand services where building a model instance per row was most of the time."""

    finished: int
    completed: int
    partial: int
    canceled: int
    accepted: int
    failures: int
    refills: int
    refills_completed: int
    started: int
    start_p50: int | None
    start_p90: int | None
    delivered: int
    per1000_p50: int | None
    per1000_p90: int | None

    @classmethod
    def lookups(cls, prefix: str) -> dict[str, F]:
        """The `.values()` expressions of the figures under a relation, e.g. "quality__"."""
        return {f"q_{name}": F(f"{prefix}{name}") for name in cls.__dataclass_fields__}

    @classmethod
    def from_values(cls, row: dict[str, Any]) -> FiguresRow | None:
        """The figures in a row read with `lookups`; None when the relation has no row."""
        if row["q_finished"] is None:
            return None
        return cls(**{name: row[f"q_{name}"] for name in cls.__dataclass_fields__})


def is_measured(figures: QualityFigures | FiguresRow | None) -> bool:
    return figures is not None and figures.finished >= min_sample()


@dataclass(frozen=True)
class Eta:
    start_seconds: int | None
    complete_seconds: int | None
    sample: int


def eta_for(*, figures: QualityFigures | None, quantity: int, paced: bool = False) -> Eta | None:
    """Expected seconds from placing to start and to completion of `quantity` units, from
    the medians, or None while fewer than QUALITY_MIN_SAMPLE orders were measured."""
    if figures is None or figures.started < min_sample() or figures.start_p50 is None:
        return None
    complete = None
    if not paced and figures.per1000_p50 is not None and figures.delivered >= min_sample():
        complete = figures.start_p50 + round(figures.per1000_p50 * quantity / 1000)
    return Eta(start_seconds=figures.start_p50, complete_seconds=complete, sample=figures.started)


def avg_minutes(seconds: int | None) -> int | None:
    return None if seconds is None else max(1, round(seconds / 60)) if seconds else 0
