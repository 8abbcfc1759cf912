"""API v2 under load: gunicorn on PostgreSQL, wrk as the load generator in its own process.

    python -m tests.bench.bench_api [--duration 20] [--connections 32]

Measures `add` and `status` (100 ids) requests per second and latency percentiles, the SQL
queries of one `status` request, and the cost of one API key check.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import timeit
from decimal import Decimal
from pathlib import Path

import requests

from tests.bench import wrk
from tests.bench.setup import setup_django

ROOT = Path(__file__).resolve().parents[2]
PORT = 8765
BROKER = "redis://127.0.0.1:6379/12"


def seed(customers: int, services: int) -> tuple[list[str], list[int], list[str]]:
    from django.utils import timezone

    from accounts.services import api_key_issue
    from catalog.models import Category, Route, Service
    from orders.models import Order
    from providers.models import Provider, UpstreamService
    from tests.factories import UserFactory
    from wallets.services import wallet_credit

    provider = Provider.objects.create(name="bench-upstream", api_url="http://127.0.0.1:9/api/v2", api_key="k")
    category = Category.objects.create(name="Bench")
    service_ids = []
    for i in range(services):
        upstream = UpstreamService.objects.create(
            provider=provider,
            external_id=str(i + 1),
            name=f"U{i}",
            rate=Decimal("1"),
            min_quantity=10,
            max_quantity=100000,
            last_seen_at=timezone.now(),
        )
        service = Service.objects.create(
            category=category,
            name=f"Bench service {i}",
            min_quantity=10,
            max_quantity=100000,
            price=Decimal("1.3"),
            cost=Decimal("1"),
        )
        Route.objects.create(service=service, upstream=upstream)
        service_ids.append(service.pk)
    keys, id_lists = [], []
    first_service = Service.objects.get(pk=service_ids[0])
    for i in range(customers):
        user = UserFactory(username=f"bench{i}")
        wallet_credit(user=user, amount=Decimal("1000000"), kind="deposit", idempotency_key=f"bench:{i}")
        keys.append(api_key_issue(user=user))
        orders = Order.objects.bulk_create(
            [
                Order(
                    user=user,
                    service=first_service,
                    link=f"https://x.io/{i}/{n}",
                    quantity=100,
                    charge=Decimal("0.13"),
                    price_per_1000=Decimal("1.3"),
                    status="In progress",
                    state="sent",
                    remains=40,
                    start_count=10,
                )
                for n in range(100)
            ]
        )
        id_lists.append(",".join(str(o.pk) for o in orders))
    return keys, service_ids, id_lists


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    if not wrk.available():
        sys.exit("wrk is needed (apt-get install wrk)")
    os.environ["CELERY_BROKER_URL"] = BROKER
    setup_django()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.selectors import api_key_get_by_raw
    from accounts.services import api_key_digest

    keys, services, ids = seed(args.connections, 20)
    results: dict[str, object] = {}

    # One status request of 100 ids, in-process: its SQL.
    client = Client()
    settings.API_RATE_LIMIT_PER_KEY = "1000000/m"
    with CaptureQueriesContext(connection) as queries:
        reply = client.post("/api/v2", {"key": keys[0], "action": "status", "orders": ids[0]})
    assert len(json.loads(reply.content)) == 100
    results["status_queries_per_request"] = len(queries)
    # The key check alone: the keyed hash, and the hash plus the indexed lookup.
    results["key_hash_us"] = round(
        timeit.timeit(lambda: api_key_digest(raw_key=keys[0]), number=20000) / 20000 * 1e6, 2
    )
    results["key_check_us"] = round(
        timeit.timeit(lambda: api_key_get_by_raw(raw_key=keys[0]), number=2000) / 2000 * 1e6, 1
    )

    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY if settings.SECRET_KEY.startswith("bench") else "bench-" + "x" * 60,
        "API_KEY_PEPPER": settings.API_KEY_PEPPER or f"api-key:{settings.SECRET_KEY}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "CACHE_URL": "rediscache://127.0.0.1:6379/11",
        "API_RATE_LIMIT_PER_KEY": "1000000/m",
        "GUNICORN_BIND": f"127.0.0.1:{PORT}",
        "GUNICORN_WORKERS": str(args.workers),
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--access-logfile",
            "/dev/null",
            "smmpanel.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                if requests.post(
                    f"http://127.0.0.1:{PORT}/api/v2", data={"key": keys[0], "action": "balance"}, timeout=2
                ).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{PORT}/api/v2"
        results["status_100_ids"] = wrk.run(
            wrk.status_script(keys=keys, id_lists=ids), url=url, duration=args.duration, connections=args.connections
        )
        results["add"] = wrk.run(
            wrk.add_script(keys=keys, services=services), url=url, duration=args.duration, connections=args.connections
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        import redis

        redis.Redis.from_url(BROKER).flushdb()
    from orders.models import Order

    results["orders_created"] = Order.objects.count() - len(keys) * 100
    print(json.dumps(results, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
