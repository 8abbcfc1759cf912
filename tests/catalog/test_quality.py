"""Measured quality: right on a seeded history with known answers, recorded when an order
finishes, summarised within a minute, and the window rolls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import RouteDay, RouteQuality, ServiceQuality
from catalog.quality import (
    Finished,
    bin_of,
    eta_for,
    hist_add,
    percentile,
    quality_record_final,
    quality_refresh,
)
from tests.factories import RouteFactory

pytestmark = pytest.mark.django_db


def test_percentiles_from_the_histogram_are_within_one_bin():
    hist: list[int] = []
    values = [10] * 50 + [100] * 40 + [1000] * 10  # p50 = 10 s, p90 = 100 s
    for v in values:
        hist = hist_add(hist, v)
    assert sum(hist) == 100
    # Four bins per doubling: a value is read back within 2^(1/8) ≈ 9 %.
    assert percentile(hist, 0.5) == pytest.approx(10, rel=0.091)
    assert percentile(hist, 0.9) == pytest.approx(100, rel=0.091)
    assert percentile(hist, 0.91) == pytest.approx(1000, rel=0.091)
    assert percentile([], 0.5) is None
    assert bin_of(0.2) == 0 and bin_of(1) == 1 and bin_of(10**12) == 99


def _finish(route, *, status, start, delivery, quantity=1000, remains=0, at=None, paced=False):
    at = at or timezone.now()
    started = None if start is None else at - timedelta(seconds=delivery)
    placed = at - timedelta(seconds=delivery + (start or 0))
    quality_record_final(
        order=Finished(
            route_id=route.pk,
            service_id=route.service_id,
            status=status,
            placed_at=placed,
            started_at=started,
            finished_at=at,
            quantity=quantity,
            remains=remains,
            paced=paced,
        )
    )


def seed_history(route, *, at=None):
    """20 orders: 16 Completed, 2 Partial (half delivered), 2 Canceled before starting.
    Start: 10 after 60 s, 6 after 1 h, 2 after 4 h. Delivery: 1000 units in 10 min for 10
    orders, in 1 h for 6; the partials 500 units in 1 h (2 h per 1000)."""
    for i in range(16):
        start = 60 if i < 10 else 3600
        _finish(route, status="Completed", start=start, delivery=600 if i < 10 else 3600, at=at)
    for _ in range(2):
        _finish(route, status="Partial", start=4 * 3600, delivery=3600, remains=500, at=at)
    for _ in range(2):
        _finish(route, status="Canceled", start=None, delivery=0, remains=1000, at=at)


def test_figures_of_a_seeded_history_have_the_known_answers():
    route = RouteFactory()
    seed_history(route)
    quality_refresh()
    figures = RouteQuality.objects.get(route=route)
    assert (figures.finished, figures.completed, figures.partial, figures.canceled) == (20, 16, 2, 2)
    assert (figures.completed_share, figures.partial_share, figures.canceled_share) == (80, 10, 10)
    # 18 started: sorted starts are 10 × 60 s, 6 × 3600 s, 2 × 14400 s.
    assert figures.started == 18
    assert figures.start_p50 == pytest.approx(60, rel=0.091)  # rank 9
    assert figures.start_p90 == pytest.approx(4 * 3600, rel=0.091)  # rank ⌈0.9 × 18⌉ = 17
    # Per 1000: 10 × 600 s, 6 × 3600 s, 2 × 7200 s.
    assert figures.delivered == 18
    assert figures.per1000_p50 == pytest.approx(600, rel=0.091)
    assert figures.per1000_p90 == pytest.approx(7200, rel=0.091)
    service = ServiceQuality.objects.get(service=route.service)
    assert (service.finished, service.start_p50) == (20, figures.start_p50)
    eta = eta_for(figures=service, quantity=5000)
    assert eta is not None and eta.sample == 18
    assert eta.complete_seconds == service.start_p50 + service.per1000_p50 * 5


def test_service_figures_add_up_its_routes_and_a_paced_order_has_no_durations():
    route = RouteFactory()
    other = RouteFactory(service=route.service, priority=2)
    _finish(route, status="Completed", start=60, delivery=600)
    _finish(other, status="Completed", start=60, delivery=600, paced=True)
    quality_refresh()
    assert ServiceQuality.objects.get(service=route.service).finished == 2
    assert RouteQuality.objects.get(route=other).started == 0


def test_days_older_than_the_window_roll_out():
    route = RouteFactory()
    now = timezone.now()
    seed_history(route, at=now - timedelta(days=settings.QUALITY_WINDOW_DAYS))
    _finish(route, status="Completed", start=60, delivery=600, at=now)
    quality_refresh(now=now)
    assert RouteQuality.objects.get(route=route).finished == 1
    assert RouteDay.objects.filter(route=route).count() == 2


def test_refresh_reads_only_what_changed_since_its_cursor():
    routes = [RouteFactory() for _ in range(5)]
    now = timezone.now()
    for route in routes:
        _finish(route, status="Completed", start=60, delivery=600, at=now - timedelta(minutes=10))
    quality_refresh(now=now)
    later = now + timedelta(minutes=1)
    _finish(routes[0], status="Completed", start=60, delivery=600, at=later)
    with CaptureQueriesContext(connection) as queries:
        assert quality_refresh(now=later + timedelta(seconds=1)) == 1
    assert RouteQuality.objects.get(route=routes[0]).finished == 2
    assert not any("orders_order" in q["sql"] for q in queries.captured_queries)
