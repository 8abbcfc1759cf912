"""Measured quality at 1,000,000 orders: summarising, recording and reading the figures.

    .venv/bin/python -m tests.bench.quality [--orders 1000000] [--services 1000]

Standalone (its own database, BENCH_DATABASE_URL, default `bench_quality`, dropped
afterwards unless --keep-db), or as the `quality` phase of `make bench` over the data
phase's catalogue. The figures are read from per-route-and-day rows (catalog/quality.py),
never from the orders table, so 1,000,000 finished orders are seeded as what they leave
there: one row per route and day over the 30-day window (generate_series, one statement),
with their counts and histograms. Then:

- a full summary (every route and service: the first run, or a new day rolling the window);
- recording 2,000 finishing orders (each in its own transaction, as order_transition does);
- the incremental summary the beat task runs after them;
- the services page (100 services), the new-order page (every service with its figures)
  and the API's `services` reply (every service), in-process: median server time and the
  SQL queries of one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_quality"
RUNS = 7


def seed_catalogue(*, services: int) -> None:
    """A provider, `services` services each with one route (standalone runs only)."""
    from django.utils import timezone

    from catalog.models import Category, Route, Service
    from providers.models import Provider, UpstreamService

    provider = Provider.objects.create(name="bench-quality", api_url="http://127.0.0.1:9/api/v2", api_key="k")
    category = Category.objects.create(name="Bench")
    now = timezone.now()
    upstreams = UpstreamService.objects.bulk_create(
        UpstreamService(
            provider=provider,
            external_id=str(i),
            name=f"Up {i}",
            rate=Decimal("1"),
            max_quantity=100000,
            last_seen_at=now,
        )
        for i in range(services)
    )
    sold = Service.objects.bulk_create(
        Service(category=category, name=f"Service {i}", price=Decimal("1.3"), cost=Decimal("1"), max_quantity=100000)
        for i in range(services)
    )
    Route.objects.bulk_create(Route(service=s, upstream=u) for s, u in zip(sold, upstreams, strict=True))


def seed_aggregates(*, orders: int, days: int = 30) -> int:
    """The route-day rows `orders` finished orders leave over `days` days, in one INSERT."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM catalog_route")
        routes = int(cursor.fetchone()[0])
        per_row = max(1, -(-orders // (routes * days)))
        cursor.execute(
            "INSERT INTO catalog_routeday (route_id, service_id, day, completed, partial, canceled, accepted, "
            "failures, refills, refills_completed, start_hist, per1000_hist, updated_at) "
            "SELECT r.id, r.service_id, current_date - d, %(n)s - 2 * (%(n)s / 12), %(n)s / 12, %(n)s / 12, %(n)s, "
            "(r.id + d) %% 3, (r.id + d) %% 4, ((r.id + d) %% 4) * (r.id %% 2), "
            # A spread of starts around 10 min to 4 h and of delivery around 20 min to 8 h per 1000.
            "(SELECT jsonb_agg(CASE WHEN i BETWEEN 38 AND 56 THEN 1 + (r.id + d + i) %% 3 ELSE 0 END ORDER BY i) "
            " FROM generate_series(0, 56) i), "
            "(SELECT jsonb_agg(CASE WHEN i BETWEEN 42 AND 60 THEN 1 + (r.id * 7 + d + i) %% 3 ELSE 0 END ORDER BY i) "
            " FROM generate_series(0, 60) i), "
            "now() - d * interval '1 day' "
            "FROM catalog_route r CROSS JOIN generate_series(0, %(last)s) d",
            {"n": per_row, "last": days - 1},
        )
        cursor.execute("ANALYZE catalog_routeday")
        return routes * days * per_row


def _median_ms(func: Any, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        func()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def _page(client: Any, method: str, url: str, data: Any = None) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = (lambda: client.post(url, data)) if method == "post" else (lambda: client.get(url))
    first = call()
    if first.status_code != 200:
        raise RuntimeError(f"{url} answered {first.status_code}")
    ms = _median_ms(call)
    with CaptureQueriesContext(connection) as queries:
        call()
    return ms, len(queries)


def measure(*, orders: int) -> list[tuple[str, str, float, str]]:
    """Seed the aggregates of `orders` orders over the catalogue there is, and measure.
    Returns (key, label, value, unit) rows."""
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import api_key_issue
    from catalog.models import QualityCursor, Route, RouteDay
    from catalog.quality import Finished, quality_record_final, quality_refresh

    rows: list[tuple[str, str, float, str]] = []
    began = time.perf_counter()
    represented = seed_aggregates(orders=orders)
    rows.append(
        (
            "quality_seed_s",
            f"Quality: seeding the route-day rows of {represented:,} orders",
            round(time.perf_counter() - began, 1),
            "s",
        )
    )
    day_rows = RouteDay.objects.count()

    QualityCursor.objects.all().delete()
    began = time.perf_counter()
    routes = quality_refresh()
    full = round((time.perf_counter() - began) * 1000, 1)
    rows.append(
        ("quality_full_ms", f"Quality: full summary of {routes:,} routes ({day_rows:,} route-day rows)", full, "ms")
    )

    route_ids = list(Route.objects.values_list("id", "service_id"))
    now = timezone.now()
    count = 2000
    began = time.perf_counter()
    for i in range(count):
        route_id, service_id = route_ids[i % len(route_ids)]
        with transaction.atomic():
            quality_record_final(
                order=Finished(
                    route_id=route_id,
                    service_id=service_id,
                    status="Completed",
                    placed_at=now - timedelta(hours=3),
                    started_at=now - timedelta(hours=2),
                    finished_at=now,
                    quantity=1000,
                    remains=0,
                    paced=False,
                )
            )
    per_order = round((time.perf_counter() - began) * 1000 / count, 2)
    rows.append(("quality_record_ms", "Quality: recording one finishing order (in its transaction)", per_order, "ms"))
    began = time.perf_counter()
    changed = quality_refresh(now=timezone.now() + timedelta(seconds=1))
    rows.append(
        (
            "quality_incremental_ms",
            f"Quality: the minute's summary after {count:,} finished ({changed:,} routes)",
            round((time.perf_counter() - began) * 1000, 1),
            "ms",
        )
    )

    user = User.objects.create_user(username="bench-quality", email="bq@example.com", password="x" * 20)
    key = api_key_issue(user=user)
    client = Client()
    ms, queries = _page(client, "get", "/services/")
    rows += [
        ("quality_services_page_ms", "Services page with measured figures: server time", ms, "ms"),
        ("quality_services_page_queries", "Services page: SQL queries", queries, ""),
    ]
    client.force_login(user)
    ms, queries = _page(client, "get", "/orders/new/")
    rows += [
        ("quality_new_order_ms", f"New-order page ({len(route_ids):,} services with figures): server time", ms, "ms"),
        ("quality_new_order_queries", "New-order page: SQL queries", queries, ""),
    ]
    api = Client()
    ms, queries = _page(api, "post", "/api/v2", {"key": key, "action": "services"})
    rows += [
        ("quality_api_services_ms", f"API services ({len(route_ids):,} services with figures): server time", ms, "ms"),
        ("quality_api_services_queries", "API services: SQL queries", queries, ""),
    ]
    return rows


def phase(run: Any) -> None:
    """`make bench`'s `quality` phase, over the data phase's catalogue."""
    for key, label, value, unit in measure(orders=run.plan.orders):
        run.add(key, label, value, unit)
        print(f"  {label}: {value} {unit}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    from devtools.db import database_drop
    from tests.bench.setup import setup_django

    setup_django(fresh=True)
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"load average at start: {load} (numbers are only meaningful on an idle machine)", flush=True)
        seed_catalogue(services=args.services)
        for _key, label, value, unit in measure(orders=args.orders):
            print(f"{label}: {value} {unit}", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            database_drop(os.environ["BENCH_DATABASE_URL"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
