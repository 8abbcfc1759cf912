"""`make bench`: the panel under load on PostgreSQL and Redis, with gunicorn, real Celery
worker processes and the provider simulator in its own process; figures against the
README's targets.

    .venv/bin/python -m tests.bench.run_all [--quick] [--keep-db] [--update-readme]

Phases, in order (each prints as it goes; `--quick` shrinks every one for development):

1. data: a fresh `bench` database; 1,000 services through the real provider sync and import;
   10,000 customers; 1,000,000 finished orders over a year with their ledger (SQL
   `generate_series`, seconds instead of hours); API keys for the busiest customers.
2. pages: the customer's orders page and the admin's order list, first page and a page far
   down, in-process (django.test.Client): median server time of several runs and the SQL
   queries of one.
3. api: gunicorn (gunicorn.conf.py) under wrk, 32 connections: `status` of 100 ids, then `add`.
4. wallet: one customer placing orders from 16 threads through order_place: orders per second;
   no deadlock, no negative balance, the ledger matches.
5. drain: 10,000 orders placed through order_place (their submit tasks enqueued on commit,
   the real path) while no worker runs; then Celery worker processes start and send them to
   the simulator answering after 100 ms. Time from the first claim to the last `sent`, and
   the simulator's `add` count.
6. sync: 100,000 active sent orders (the simulator holds each), the simulator answering after
   50 ms; one dispatch task (the beat's) plans chunks of 100 and the workers run them. Time
   until every order has been checked once. 2 % of the orders change status (some refund).
7. webhooks: two drains like 5., without and with a webhook endpoint for every placing
   customer, while 10,000 status changes (the status sync's own code) are delivered to the
   receiver simulator failing 30 % and hanging 2 %; then its record is checked
   (tests/bench/hooks.py).
8. audit: `ledger_audit` over everything the run did.

(`quality`, after `pages`: the measured quality figures of 1,000,000 orders, summarised,
recorded and read on the services page, the new-order page and the API; tests/bench/quality.py,
which also runs on its own: `python -m tests.bench.quality`.)

Results: a table, bench/results.json, bench/results.svg; `--update-readme` rewrites the
README's results table. Everything started is stopped and the Redis databases used (10, 11,
or BENCH_REDIS_DBS) are flushed on success, failure, Ctrl-C or when the time budget runs out.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from devtools.db import database_drop
from devtools.ports import free_port
from devtools.procs import Processes, celery_worker_argv, wait_for
from devtools.simctl import SimulatorControl, simulator_argv
from tests.bench import ceiling, hooks, quality, report, wrk
from tests.bench.meter import PhaseMeter
from tests.bench.setup import setup_django

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench"
LOGS = ROOT / "var" / "bench"
# BENCH_REDIS_URL: another Redis server; BENCH_REDIS_DBS: its two databases used (broker,
# cache) and flushed, 10 and 11 unless told (BENCH_REDIS_DBS=12,13).
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def _redis_dbs(text: str) -> tuple[int, int]:
    broker, cache = (int(part) for part in text.split(","))
    if broker == cache:
        raise ValueError("BENCH_REDIS_DBS needs two different databases")
    return broker, cache


BROKER_DB, CACHE_DB = _redis_dbs(os.environ.get("BENCH_REDIS_DBS", "10,11"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
SIM_KEY = "demo-provider-key"


@dataclass(frozen=True)
class Plan:
    customers: int = 10_000
    services: int = 1_000
    orders: int = 1_000_000
    api_keys: int = 256
    connections: int = 32
    wrk_seconds: int = 60
    ceiling_seconds: int = 20  # each of: pgbench add, pgbench status, the bare-WSGI floor
    wallet_threads: int = 16
    wallet_seconds: int = 15
    drain_orders: int = 10_000
    drain_latency_ms: int = 100
    placing_processes: int = 2
    sync_orders: int = 100_000
    sync_latency_ms: int = 50
    webhook_events: int = 10_000  # status changes of the webhooks phase (two per order)
    webhook_threads: int = 16  # the webhooks queue's worker (as deploy/systemd)
    worker_processes: int = 2
    worker_threads: int = 16
    gunicorn_workers: int | None = None  # None: gunicorn.conf.py's default
    page_runs: int = 7
    budget_seconds: int = 45 * 60


QUICK = Plan(
    customers=2_000,
    services=300,
    orders=100_000,
    api_keys=64,
    wrk_seconds=10,
    ceiling_seconds=5,
    wallet_seconds=3,
    drain_orders=1_000,
    sync_orders=10_000,
    webhook_events=2_000,
    page_runs=3,
    budget_seconds=15 * 60,
)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def bench_env(plan: Plan) -> dict[str, str]:
    """The production-like settings every process of the run shares."""
    env = {
        "DATABASE_URL": DATABASE_URL,
        "BENCH_DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": f"{REDIS}/{BROKER_DB}",
        "CACHE_URL": f"{REDIS.replace('redis://', 'rediscache://', 1)}/{CACHE_DB}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + "k" * 60,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        # Staff would pass a second factor in production; the benchmark's admin does not.
        "STAFF_REQUIRE_MFA": "false",
        "PROVIDERS_ALLOW_PRIVATE_URLS": "true",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "consolemail://",
        # One dispatch plans the whole pass (the default, 20 chunks, paces it over minutes).
        "ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER": str(max(20, plan.sync_orders // 100 + 10)),
        "DJANGO_SETTINGS_MODULE": "smmpanel.settings",
    }
    if plan.gunicorn_workers:
        env["GUNICORN_WORKERS"] = str(plan.gunicorn_workers)
    env.update(hooks.bench_env())
    return env


class BudgetExceeded(Exception):
    pass


@dataclass
class Run:
    plan: Plan
    procs: Processes
    sim: SimulatorControl
    figures: list[report.Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    provider: Any = None
    customers: Any = None
    keys: list[str] = field(default_factory=list)
    drain_ids: list[int] = field(default_factory=list)

    def add(self, key: str, label: str, value: float | None, unit: str = "", **kwargs: Any) -> None:
        self.figures.append(report.figure(key, label, value, unit, **kwargs))


DATABASE_NAME = DATABASE_URL.rsplit("/", 1)[-1]


@contextmanager
def metered(run: Run, key: str) -> Iterator[dict[str, int]]:
    """Record where the CPU went during the block (run.details["cpu"][key]); set
    box["operations"] to get it per operation too."""
    meter = PhaseMeter(DATABASE_NAME)
    meter.start()
    box = {"operations": 0}
    try:
        yield box
    finally:
        used: dict[str, Any] = dict(meter.stop())
    if box["operations"]:
        used["ms_per_operation"] = {
            kind: round(seconds / box["operations"] * 1000, 2)
            for kind, seconds in used.items()
            if kind not in ("wall", "foreign_share")
        }
    run.details.setdefault("cpu", {})[key] = used
    if used["foreign_share"] > 0.1:
        log(f"WARNING: other processes used {used['foreign_share']:.0%} of the machine during {key}")


SERVER_SIDE = ("postgres", "redis")


def add_cpu(run: Run, key: str, label: str, *, phase: str, own: str) -> None:
    """A figure: CPU milliseconds per operation of `phase`, in its own kind of process (`own`)
    plus PostgreSQL and Redis."""
    per = run.details.get("cpu", {}).get(phase, {}).get("ms_per_operation")
    value = round(sum(per.get(kind, 0.0) for kind in (own, *SERVER_SIDE)), 1) if per else None
    run.add(key, label, value, "ms")


# --- Phases -------------------------------------------------------------------------------------
def phase_data(run: Run) -> None:
    from django.core.management import call_command
    from django.db import transaction

    from accounts.models import User
    from catalog.services import panel_settings_get, provider_sync
    from tests.bench import seed

    plan = run.plan
    t0 = time.monotonic()
    call_command("collectstatic", "--noinput", verbosity=0)  # DEBUG is off: pages need the manifest
    run.provider = seed.seed_catalogue(api_url=run.sim.api_url, api_key=SIM_KEY)
    seeded = time.monotonic() - t0
    log(f"catalogue: {plan.services} services synced and imported ({seeded:.1f} s)")
    run.add("catalog_seed_seconds", f"Provider sync and import of {plan.services} new services", round(seeded, 2), "s")
    t_resync = time.monotonic()
    provider_sync(provider=run.provider)
    resynced = time.monotonic() - t_resync
    run.add("catalog_resync_seconds", f"Provider sync of {plan.services} unchanged services", round(resynced, 2), "s")
    t1 = time.monotonic()
    with transaction.atomic():
        run.customers = seed.seed_customers(count=plan.customers)
        first_order, last_order = seed.seed_history(customers=run.customers, count=plan.orders)
        log(f"{plan.customers} customers, {plan.orders} orders inserted ({time.monotonic() - t1:.1f} s)")
        seed.seed_ledger(
            first_user=run.customers.first_id,
            last_user=run.customers.first_id + plan.customers - 1,
            first_order=first_order,
        )
        User.objects.create_superuser(username="bench-admin", email="admin@bench.example", password=None)
        # The simulator's outcomes are random (a share canceled or partial), and each service
        # here has one route: judged by them, routes would be demoted mid-run and the drains
        # would time the probe interval. Routing is proven by its own tests (tests/orders/
        # test_routing.py); here no route is ever judged.
        settings_row = panel_settings_get()
        settings_row.route_min_attempts = 10**9
        settings_row.save(update_fields=["route_min_attempts"])
    t2 = time.monotonic()
    log(f"ledger written ({t2 - t1:.1f} s since the customers)")
    key_users = [run.customers.user_id(i) for i in range(plan.api_keys)]
    run.keys = seed.seed_api_keys(user_ids=key_users)
    seed.vacuum_analyze()
    log(f"VACUUM ANALYZE ({time.monotonic() - t2:.1f} s)")
    run.details["data"] = {
        "customers": plan.customers,
        "services": plan.services,
        "orders": plan.orders,
        "order_ids": [first_order, last_order],
        "seconds": round(time.monotonic() - t0, 1),
    }


def _page(client: Any, url: str, runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = client.get(url)  # warms templates and caches, as a running server has them
    if first.status_code != 200:
        raise RuntimeError(f"{url} answered {first.status_code}")
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
    return {
        "url": url,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(queries),
        "slowest_sql": [{"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:300]} for q in slowest],
    }


def phase_pages(run: Run) -> None:
    from django.test import Client

    from accounts.models import User
    from orders.models import Order

    whale = User.objects.get(pk=run.customers.user_id(0))
    mine = Order.objects.filter(user=whale).order_by("-id").values_list("id", flat=True)
    count = mine.count()
    deep_before = mine[int(count * 0.95)]
    customer = Client()
    customer.force_login(whale)
    first = _page(customer, "/orders/", run.plan.page_runs)
    deep = _page(customer, f"/orders/?before={deep_before}", run.plan.page_runs)

    staff = Client()
    staff.force_login(User.objects.get(username="bench-admin"))
    total = Order.objects.count()
    deep_page = max(1, int(total / 50 * 0.5))
    admin_first = _page(staff, "/admin/orders/order/", run.plan.page_runs)
    # Far down as staff get there, by the list's "Older orders" links (keyset), and as a page
    # number typed into the address (OFFSET: every skipped row is read).
    halfway = Order.objects.order_by("-id").values_list("id", flat=True)[total // 2]
    admin_deep = _page(staff, f"/admin/orders/order/?before={halfway}", run.plan.page_runs)
    admin_numbered = _page(staff, f"/admin/orders/order/?p={deep_page}", run.plan.page_runs)
    # The chart's finished days are what the beat's dashboard_refresh_task leaves in the cache
    # every 5 minutes: run it as the beat would, and time it too.
    from panel.dashboard import dashboard_refresh

    began = time.perf_counter()
    dashboard_refresh()
    refresh_ms = round((time.perf_counter() - began) * 1000, 1)
    dashboard = _page(staff, "/admin/", run.plan.page_runs)
    run.details["pages"] = {
        "customer_orders": count,
        "orders_first": first,
        "orders_deep": deep,
        "admin_first": admin_first,
        "admin_deep": admin_deep,
        "admin_numbered": admin_numbered,
        "dashboard": dashboard,
    }
    run.add("orders_page_first_ms", "Orders page, first page: server time", first["median_ms"], "ms")
    run.add("orders_page_first_queries", "Orders page, first page: SQL queries", first["queries"])
    run.add(
        "orders_page_deep_ms",
        f"Orders page, {int(count * 0.95):,} orders down: server time",
        deep["median_ms"],
        "ms",
    )
    run.add("orders_page_deep_queries", "Orders page, far down: SQL queries", deep["queries"])
    run.add("admin_list_first_ms", "Admin order list, first page: server time", admin_first["median_ms"], "ms")
    run.add("admin_list_first_queries", "Admin order list, first page: SQL queries", admin_first["queries"])
    run.add(
        "admin_list_deep_ms",
        f"Admin order list, {total // 2:,} orders down (Older orders links): server time",
        admin_deep["median_ms"],
        "ms",
    )
    run.add("admin_list_deep_queries", "Admin order list, far down: SQL queries", admin_deep["queries"])
    run.add(
        "admin_list_numbered_ms",
        f"Admin order list, page {deep_page:,} typed as a number: server time",
        admin_numbered["median_ms"],
        "ms",
    )
    run.add("dashboard_ms", "Staff dashboard: server time", dashboard["median_ms"], "ms")
    run.add("dashboard_refresh_ms", "Staff dashboard: the beat's 30-day summary (every 5 min)", refresh_ms, "ms")
    for name in ("orders_first", "orders_deep", "admin_first", "admin_deep", "admin_numbered", "dashboard"):
        row = run.details["pages"][name]
        log(f"{row['url']}: {row['median_ms']} ms, {row['queries']} queries")


def _flush_broker() -> None:
    import redis

    redis.Redis.from_url(f"{REDIS}/{BROKER_DB}").flushdb()


def phase_api(run: Run) -> None:
    from django.db import connection

    from tests.bench import seed

    plan = run.plan
    key_users = [run.customers.user_id(i) for i in range(plan.api_keys)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT u.uid, string_agg(o.id::text, ',')
            FROM unnest(%s::bigint[]) AS u(uid)
            CROSS JOIN LATERAL (SELECT id FROM orders_order WHERE user_id = u.uid ORDER BY id DESC LIMIT 100) o
            GROUP BY u.uid
            """,
            [key_users],
        )
        ids_by_user = dict(cursor.fetchall())
    id_lists = [ids_by_user.get(uid, "") for uid in key_users]
    services = seed.orderable_services(quantity=100)
    limits = _machine_limits(run, key_users=key_users, id_lists=id_lists, service_id=services[0])
    port = free_port()
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    run.procs.start(
        "gunicorn",
        [
            str(VENV_BIN / "gunicorn"),
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--access-logfile",
            "/dev/null",
            "smmpanel.wsgi",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/v2"
    try:
        wait_for(
            lambda: requests.post(url, data={"key": run.keys[0], "action": "balance"}, timeout=2).json()["balance"],
            timeout=60,
            what="gunicorn",
        )
        for _ in range(50):  # every worker imports and connects before the clock starts
            requests.post(url, data={"key": run.keys[0], "action": "status", "orders": id_lists[0]}, timeout=5)
        log(f"wrk: status of 100 ids, {plan.connections} connections, {plan.wrk_seconds} s (load {loadavg()})")
        with metered(run, "api_status") as box:
            status = wrk.run(
                wrk.status_script(keys=run.keys, id_lists=id_lists),
                url=url,
                duration=plan.wrk_seconds,
                connections=plan.connections,
            )
            box["operations"] = int(status["requests"])
        log(f"status: {status}")
        log(f"wrk: add, {plan.connections} connections, {plan.wrk_seconds} s (load {loadavg()})")
        with metered(run, "api_add") as box:
            add = wrk.run(
                wrk.add_script(keys=run.keys, services=services, run=secrets.token_hex(3)),
                url=url,
                duration=plan.wrk_seconds,
                connections=plan.connections,
            )
            box["operations"] = int(add["requests"])
        log(f"add: {add}")
    finally:
        run.procs.stop("gunicorn")
        _flush_broker()  # the submit tasks of those orders: no worker is meant to send them
    run.details["api"] = {"status_100_ids": status, "add": add, "services": len(services), "keys": len(run.keys)}
    run.add("api_add_rps", "API add: requests/s (32 clients)", add["rps"], "req/s")
    run.add("api_add_p50_ms", "API add: p50 latency", add["p50_ms"], "ms")
    run.add("api_add_p95_ms", "API add: p95 latency", add["p95_ms"], "ms")
    run.add("api_add_p99_ms", "API add: p99 latency", add["p99_ms"], "ms")
    run.add("api_add_errors", "API add: errors", add["errors"] + add["timeouts"] + add["non_2xx"])
    run.add("api_status_rps", "API status of 100 ids: requests/s", status["rps"], "req/s")
    run.add("api_status_p50_ms", "API status: p50 latency", status["p50_ms"], "ms")
    run.add("api_status_p95_ms", "API status: p95 latency", status["p95_ms"], "ms")
    run.add("api_status_p99_ms", "API status: p99 latency", status["p99_ms"], "ms")
    run.add("api_status_errors", "API status: errors", status["errors"] + status["timeouts"] + status["non_2xx"])
    add_cpu(run, "api_add_cpu_ms", "API add: CPU per request (gunicorn + db + redis)", phase="api_add", own="gunicorn")
    add_cpu(
        run,
        "api_status_cpu_ms",
        "API status: CPU per request (gunicorn + db + redis)",
        phase="api_status",
        own="gunicorn",
    )
    _add_ratios(run, limits, add=add, status=status)


def _machine_limits(run: Run, *, key_users: list[int], id_lists: list[str], service_id: int) -> dict[str, Any]:
    """The ceilings and the floor of tests/bench/ceiling.py, measured now, on this machine."""
    plan = run.plan
    limits: dict[str, Any] = {}
    if not ceiling.available():
        log("pgbench is not installed: no PostgreSQL ceiling (apt-get install postgresql-client)")
    else:
        script, users = ceiling.add_setup(customers=plan.connections, service_id=service_id)
        try:
            log(f"pgbench: the add shape, {plan.connections} clients, {plan.ceiling_seconds} s")
            with metered(run, "ceiling_add") as box:
                limits["pg_add"] = ceiling.pgbench(
                    script, url=DATABASE_URL, seconds=plan.ceiling_seconds, clients=plan.connections
                )
                box["operations"] = int(limits["pg_add"]["transactions"])
        finally:
            ceiling.add_cleanup(users)
        script = ceiling.status_setup(user_ids=key_users, id_lists=id_lists)
        try:
            log(f"pgbench: the status shape, {plan.connections} clients, {plan.ceiling_seconds} s")
            with metered(run, "ceiling_status") as box:
                limits["pg_status"] = ceiling.pgbench(
                    script, url=DATABASE_URL, seconds=plan.ceiling_seconds, clients=plan.connections
                )
                box["operations"] = int(limits["pg_status"]["transactions"])
        finally:
            ceiling.status_cleanup()
        log(f"ceilings: {limits}")
    port = free_port()
    run.procs.start(
        "floor",
        [
            str(VENV_BIN / "gunicorn"),
            *("-c", str(ROOT / "gunicorn.conf.py")),
            *("--access-logfile", "/dev/null"),
            "tests.bench.ceiling:floor_app",
        ],
        env={**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}"},
    )
    url = f"http://127.0.0.1:{port}/api/v2"
    try:
        wait_for(lambda: requests.post(url, data={}, timeout=2).ok, timeout=60, what="the floor's gunicorn")
        log(f"wrk: the bare-WSGI floor, {plan.connections} connections, {plan.ceiling_seconds} s")
        with metered(run, "floor") as box:
            limits["floor"] = wrk.run(
                wrk.add_script(keys=run.keys, services=[service_id], run="floor"),
                url=url,
                duration=plan.ceiling_seconds,
                connections=plan.connections,
            )
            box["operations"] = int(limits["floor"]["requests"])
        log(f"floor: {limits['floor']}")
    finally:
        run.procs.stop("floor")
    return limits


def _add_ratios(run: Run, limits: dict[str, Any], *, add: dict[str, float], status: dict[str, float]) -> None:
    run.details["limits"] = limits
    pg_add = limits.get("pg_add", {}).get("tps")
    pg_status = limits.get("pg_status", {}).get("tps")
    floor = limits.get("floor", {}).get("rps")
    n = run.plan.connections
    run.add("pg_add_tps", f"PostgreSQL ceiling, add shape (pgbench, {n} clients)", pg_add, "tx/s")
    run.add("pg_status_tps", f"PostgreSQL ceiling, status shape (pgbench, {n} clients)", pg_status, "tx/s")
    run.add("floor_rps", f"Bare-WSGI floor (same gunicorn and wrk, {n} connections)", floor, "req/s")
    add_cpu(
        run,
        "pg_add_cpu_ms",
        "PostgreSQL ceiling, add: CPU per transaction (pgbench + db)",
        phase="ceiling_add",
        own="exited children",
    )
    add_cpu(run, "floor_cpu_ms", "Bare-WSGI floor: CPU per request (gunicorn)", phase="floor", own="gunicorn")
    run.add("api_add_of_pg", "API add as a share of the PostgreSQL ceiling", ceiling.share(add["rps"], pg_add), "%")
    run.add("api_add_of_floor", "API add as a share of the bare-WSGI floor", ceiling.share(add["rps"], floor), "%")
    run.add(
        "api_status_of_pg",
        "API status as a share of the PostgreSQL ceiling",
        ceiling.share(status["rps"], pg_status),
        "%",
    )
    run.add(
        "api_status_of_floor", "API status as a share of the bare-WSGI floor", ceiling.share(status["rps"], floor), "%"
    )


def _threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    from django.db import connections

    errors: list[BaseException] = []

    def body(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def phase_wallet(run: Run) -> None:
    from django.db.models import Sum

    from accounts.models import User
    from orders.models import Order
    from orders.services import order_place
    from tests.bench import seed
    from wallets.models import Entry, Wallet
    from wallets.services import wallet_credit

    plan = run.plan
    user = User.objects.create(username="busy-wallet", email="busy@bench.example")
    deposit = Decimal("1000000")
    wallet_credit(user=user, amount=deposit, kind="deposit", idempotency_key="bench:busy-wallet")
    service = seed.orderable_services(quantity=100)[0]
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(plan.wallet_threads)]
    barrier = threading.Barrier(plan.wallet_threads + 1)

    def place(n: int) -> None:
        from django.db import connection

        connection.ensure_connection()
        barrier.wait()
        i = 0
        while not stop.is_set():
            began = time.perf_counter()
            order_place(user=user, service_id=service, fields={"link": f"https://w.example/{n}/{i}", "quantity": 100})
            latencies[n].append(time.perf_counter() - began)
            i += 1

    log(f"busy wallet: {plan.wallet_threads} threads for {plan.wallet_seconds} s (load {loadavg()})")
    errors: list[BaseException] = []
    runner = threading.Thread(target=lambda: errors.extend(_threads(plan.wallet_threads, place)), daemon=True)
    with metered(run, "wallet") as box:
        runner.start()
        barrier.wait()
        began = time.perf_counter()
        time.sleep(plan.wallet_seconds)
        stop.set()
        runner.join()
        elapsed = time.perf_counter() - began
        box["operations"] = sum(len(x) for x in latencies)
    _flush_broker()
    placed = Order.objects.filter(user=user)
    count = placed.count()
    charged = placed.aggregate(total=Sum("charge"))["total"] or Decimal("0")
    balance = Wallet.objects.get(user=user).balance
    charges = Entry.objects.filter(user=user, kind=Entry.Kind.CHARGE).count()
    consistent = not errors and balance == deposit - charged and balance >= 0 and charges == count
    flat = sorted(x for per_thread in latencies for x in per_thread)
    run.details["wallet"] = {
        "threads": plan.wallet_threads,
        "orders": count,
        "seconds": round(elapsed, 2),
        "latency_ms_p50": round(statistics.median(flat) * 1000, 1) if flat else None,
        "latency_ms_p99": round(flat[int(len(flat) * 0.99)] * 1000, 1) if flat else None,
        "balance": str(balance),
        "expected_balance": str(deposit - charged),
        "charge_entries": charges,
        "errors": [repr(e) for e in errors[:5]],
    }
    log(f"busy wallet: {run.details['wallet']}")
    run.add("wallet_orders_per_s", "One busy wallet: orders/s (16 threads)", round(count / elapsed, 1), "orders/s")
    add_cpu(
        run,
        "wallet_cpu_ms",
        "One busy wallet: CPU per order (placing + db + redis)",
        phase="wallet",
        own="orchestrator",
    )
    run.add("wallet_consistent", "One busy wallet: no deadlock, balance ≥ 0, ledger matches", int(consistent), "yes/no")


def worker_names(plan: Plan) -> list[str]:
    return [f"worker{n}" for n in range(plan.worker_processes)]


def _start_workers(run: Run, *, queues: str = "") -> None:
    """The order workers; `queues` names what they consume (default: Celery's default queue,
    where everything goes unless a queue setting routes it elsewhere)."""
    plan = run.plan
    for n in range(plan.worker_processes):
        run.procs.start(
            f"worker{n}",
            celery_worker_argv(
                threads=plan.worker_threads, hostname=f"bench{n}@%h", extra=("--queues", queues) if queues else ()
            ),
            env=dict(os.environ),
        )


def _place_in_processes(run: Run, *, count: int, users: list[int], services: list[int], tag: str = "p") -> list[int]:
    """order_place from `placing_processes` processes of 4 threads each (every core busy)."""
    import json
    import subprocess

    processes = run.plan.placing_processes
    children = []
    for n in range(processes):
        share = count // processes + (1 if n < count % processes else 0)
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.bench.place",
                    "--users",
                    ",".join(map(str, users)),
                    "--services",
                    ",".join(map(str, services)),
                    "--count",
                    str(share),
                    "--tag",
                    f"{tag}{n}",
                    "--threads",
                    "4",
                ],
                env=dict(os.environ),
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    ids: list[int] = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=max(600, count / 5))
            if child.returncode != 0:
                raise RuntimeError(f"placing failed (exit {child.returncode})")
            ids += json.loads(out.strip().splitlines()[-1])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    return sorted(ids)


def phase_drain(run: Run) -> None:
    from django.db.models import Count, Max, Min

    from orders.models import Order, State
    from tests.bench import seed

    plan = run.plan
    run.sim.command("set_latency", ms=plan.drain_latency_ms)
    _flush_broker()
    services = seed.orderable_services(quantity=100)
    users = [run.customers.user_id(i) for i in range(min(100, plan.customers))]
    log(
        f"drain: placing {plan.drain_orders} orders through order_place from {plan.placing_processes} processes "
        f"(load {loadavg()})"
    )
    with metered(run, "placing") as box:
        began = time.monotonic()
        run.drain_ids = _place_in_processes(run, count=plan.drain_orders, users=users, services=services)
        placing = time.monotonic() - began
        box["operations"] = len(run.drain_ids)
    if len(run.drain_ids) != plan.drain_orders:
        raise RuntimeError(f"placed {len(run.drain_ids)} orders, not {plan.drain_orders}")
    run.sim.command("reset_counters")
    log(f"drain: placed in {placing:.1f} s; starting {plan.worker_processes} workers × {plan.worker_threads} threads")
    # Nothing else creates orders meanwhile: the drained ones are every order from the first on.
    mine = Order.objects.filter(pk__gte=run.drain_ids[0])
    unsettled = mine.filter(state__in=(State.QUEUED, State.SENDING))
    with metered(run, "drain") as box:
        launched = time.monotonic()
        _start_workers(run)
        wait_for(lambda: not unsettled.exists(), timeout=max(300, plan.drain_orders / 20), interval=1, what="drain")
        wall = time.monotonic() - launched
        box["operations"] = plan.drain_orders
    states = dict(mine.values_list("state").annotate(n=Count("id")).order_by())
    span = mine.aggregate(first=Min("sending_started_at"), last=Max("sent_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    adds = run.sim.summary()["adds_total"]
    rate = round(plan.drain_orders / seconds, 1)
    run.details["drain"] = {
        "orders": plan.drain_orders,
        "placing_seconds": round(placing, 1),
        "placing_orders_per_s": round(plan.drain_orders / placing, 1),
        "first_claim_to_last_sent_seconds": round(seconds, 2),
        "from_worker_launch_seconds": round(wall, 2),
        "states": states,
        "simulator_adds": adds,
        "latency_ms": plan.drain_latency_ms,
        "workers": f"{plan.worker_processes} × {plan.worker_threads} threads",
    }
    log(f"drain: {run.details['drain']}")
    run.add("drain_orders_per_s", f"Submission drain of {plan.drain_orders:,} (100 ms upstream)", rate, "orders/s")
    run.add("drain_seconds", "Submission drain: first claim to last sent", round(seconds, 1), "s")
    run.add("drain_simulator_adds", "Submission drain: simulator add count", adds, expected=float(plan.drain_orders))
    add_cpu(run, "drain_cpu_ms", "Submission drain: CPU per order (workers + db + redis)", phase="drain", own="celery")
    add_cpu(
        run,
        "placing_cpu_ms",
        "Placing: CPU per order (order_place + db + redis)",
        phase="placing",
        own="exited children",
    )
    run.add(
        "placing_orders_per_s",
        f"Placing through order_place ({plan.placing_processes} processes × 4 threads)",
        round(plan.drain_orders / placing, 1),
        "orders/s",
    )


def phase_sync(run: Run) -> None:
    from django.db.models import Count, Max
    from django.utils import timezone

    from orders.models import ACTIVE_STATUSES, Order, State
    from orders.tasks import orders_sync_dispatch_task
    from providers.models import ProviderCall
    from tests.bench import seed

    plan = run.plan
    run.sim.command("set_latency", ms=plan.sync_latency_ms)
    active = Order.objects.filter(provider=run.provider, state=State.SENT, status__in=ACTIVE_STATUSES)
    extra = plan.sync_orders - active.count()
    service = Order.objects.filter(pk__in=run.drain_ids[:1]).values_list("service_id", flat=True).first()
    if service is None:
        service = seed.orderable_services(quantity=100)[0]
    from catalog.models import Route

    external = Route.objects.filter(service_id=service, priority=1).values_list("upstream__external_id", flat=True)[0]
    t0 = time.monotonic()
    first_upstream, last_upstream = run.sim.command("bulk_add", service=int(external), count=extra, quantity=100)
    reseller = seed.seed_customers(count=1, prefix="sync-reseller")
    first, _last = seed.seed_active(
        user_id=reseller.first_id, upstream_ids=(first_upstream, last_upstream), service_id=service, quantity=100
    )
    seed.seed_ledger(first_user=reseller.first_id, last_user=reseller.first_id, first_order=first)
    seed.vacuum_analyze(tables=("orders_order", "wallets_entry"), vacuum=False)
    upstream = [int(x) for x in active.values_list("provider_order_id", flat=True)]
    # 1 in 100 orders moves on a step (to In progress), 1 in 100 finishes (some with a refund):
    # twice what a minute brings when orders take hours and change status two or three times.
    step = 100
    run.sim.command("advance", steps=1, orders=upstream[::step])
    run.sim.command("advance", steps=None, orders=upstream[step // 2 :: step])
    total = active.count()
    log(f"sync: {total} active orders ready ({time.monotonic() - t0:.1f} s); dispatching (load {loadavg()})")

    since = timezone.now()
    began = time.monotonic()
    unchecked = Order.objects.filter(provider=run.provider, state=State.SENT, updated_at__lt=since).filter(
        status__in=ACTIVE_STATUSES
    )
    with metered(run, "sync") as box:
        orders_sync_dispatch_task.delay()
        wait_for(lambda: not unchecked.exists(), timeout=max(300, plan.sync_orders / 100), interval=1, what="sync")
        box["operations"] = total
    touched = Order.objects.filter(provider=run.provider, updated_at__gte=since)
    # From the dispatch to the last order's update, as the rows record it (not the polling).
    last = touched.aggregate(last=Max("updated_at"))["last"]
    seconds = (last - since).total_seconds() if last else time.monotonic() - began
    statuses = dict(touched.values_list("status").annotate(n=Count("id")).order_by())
    flagged = touched.filter(sync_flag=True).count()
    calls = ProviderCall.objects.filter(action="status", started_at__gte=since).count()
    run.details["sync"] = {
        "orders": total,
        "seconds": round(seconds, 2),
        "orders_per_s": round(total / seconds, 1),
        "statuses_after": statuses,
        "flagged": flagged,
        "status_calls": calls,
        "latency_ms": plan.sync_latency_ms,
    }
    log(f"sync: {run.details['sync']}")
    run.add("sync_seconds", f"Status sync pass over {total:,} orders (50 ms upstream)", round(seconds, 1), "s")
    run.add("sync_orders_per_s", "Status sync: orders/s", round(total / seconds, 1), "orders/s")
    add_cpu(run, "sync_cpu_ms", "Status sync: CPU per order (workers + db + redis)", phase="sync", own="celery")


def phase_audit(run: Run) -> None:
    from wallets.audit import ledger_audit_run

    began = time.monotonic()
    result = ledger_audit_run()
    seconds = time.monotonic() - began
    run.details["audit"] = {"ok": result.ok, "summary": result.summary(), "seconds": round(seconds, 1)}
    if not result.ok:
        run.details["audit"]["violations"] = result.lines()[:20]
    log(f"audit: {run.details['audit']}")
    run.add("ledger_audit_ok", "Ledger audit after the run", int(result.ok), "yes/no")
    run.add("ledger_audit_seconds", "Ledger audit: time", round(seconds, 1), "s")


PHASES: dict[str, Callable[[Run], None]] = {
    "pages": phase_pages,
    "quality": quality.phase,
    "api": phase_api,
    "wallet": phase_wallet,
    "drain": phase_drain,
    "sync": phase_sync,
    "webhooks": hooks.phase,
    "audit": phase_audit,
}


# --- Driver --------------------------------------------------------------------------------------
def _on_alarm(signum: int, frame: object) -> None:
    raise BudgetExceeded("the benchmark ran out of its time budget")


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cleanup(procs: Processes, *, keep_db: bool) -> None:
    signal.alarm(0)
    procs.stop()
    try:
        import redis

        for db in (BROKER_DB, CACHE_DB):
            redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
    except Exception as exc:
        log(f"could not flush Redis: {exc}")
    if not keep_db:
        try:
            _drop_database()
        except Exception as exc:
            log(f"could not drop the database: {exc}")


def _drop_database() -> None:
    try:
        from django.db import connections

        connections.close_all()
    except Exception:
        pass
    database_drop(DATABASE_URL)


def wait_until_idle(limit: float, max_minutes: float) -> None:
    deadline = time.monotonic() + max_minutes * 60
    while loadavg() >= limit and time.monotonic() < deadline:
        log(f"load average {loadavg()} ≥ {limit}: waiting for the machine to settle")
        time.sleep(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter phases and less data (development)")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--update-readme", action="store_true", help="write the results table into README.md")
    parser.add_argument("--only", default="", help="comma-separated phases to run (data always runs)")
    parser.add_argument("--worker-processes", type=int, default=None)
    parser.add_argument("--gunicorn-workers", type=int, default=None)
    parser.add_argument(
        "--webhooks-shared",
        action="store_true",
        help="webhooks phase: deliveries on the order workers' queue (no WEBHOOKS_QUEUE), to compare",
    )
    parser.add_argument("--wait-idle", type=float, default=0, help="wait until the 1-minute load is below this")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.worker_processes:
        plan = replace(plan, worker_processes=args.worker_processes)
    if args.gunicorn_workers:
        plan = replace(plan, gunicorn_workers=args.gunicorn_workers)
    chosen = [p for p in args.only.split(",") if p] or list(PHASES)
    unknown = set(chosen) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if "api" in chosen and not wrk.available():
        print("wrk is needed: apt-get install wrk (make bench installs it when run as root)", file=sys.stderr)
        return 2
    if args.wait_idle:
        wait_until_idle(args.wait_idle, max_minutes=30)

    os.environ.update(bench_env(plan))
    if args.webhooks_shared:
        os.environ["WEBHOOKS_QUEUE"] = ""
    procs = Processes(LOGS, cwd=ROOT)
    sim_port = free_port()
    run = Run(plan=plan, procs=procs, sim=SimulatorControl(sim_port, timeout=300))
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(plan.budget_seconds)
    started = time.monotonic()
    info = report.machine()
    meta: dict[str, Any] = {"date": report.now_text(), "machine": info, "quick": args.quick, "plan": plan.__dict__}
    failed: str | None = None
    load: dict[str, float] = {"start": loadavg()}
    busy: dict[str, float] = {}
    try:
        procs.start(
            "simulator",
            simulator_argv(
                sim_port,
                *("--services", str(plan.services), "--speed", "0"),
                *("--max-orders", str(plan.sync_orders * 2 + 100_000)),
                module="tests.bench.simhost",
            ),
            env=dict(os.environ),
        )
        wait_for(lambda: bool(run.sim.summary()), timeout=30, what="the simulator")
        run.sim.command("set_balance", key=SIM_KEY, balance="1000000000000")
        log(f"database {DATABASE_URL.rsplit('/', 1)[-1]}: created fresh and migrated (load {loadavg()})")
        setup_django(fresh=True)
        from tests.bench import seed

        phase_data(run)
        for name in chosen:
            if name != "data":
                began = time.monotonic()
                seed.settle()
                log(f"settled: VACUUM (ANALYZE) and CHECKPOINT ({time.monotonic() - began:.1f} s)")
            load[name] = loadavg()
            log(f"--- {name} (load {load[name]})")
            meter = PhaseMeter(DATABASE_NAME)
            meter.start()
            try:
                PHASES[name](run)
            except (KeyboardInterrupt, BudgetExceeded):
                raise
            except Exception as exc:
                traceback.print_exc()
                run.details.setdefault("errors", {})[name] = repr(exc)
                log(f"phase {name} failed: {exc!r}")
                procs.stop("gunicorn", "receiver", hooks.WORKER, *worker_names(plan))
            busy[name] = meter.stop()["foreign_share"]
            if name == "sync" or (name == "drain" and "sync" not in chosen):
                procs.stop(*worker_names(plan))
    except KeyboardInterrupt:
        failed = "interrupted"
    except BudgetExceeded as exc:
        failed = str(exc)
    except Exception as exc:
        traceback.print_exc()
        failed = repr(exc)
    finally:
        log(
            f"cleaning up: stopping processes, flushing Redis dbs {BROKER_DB}, {CACHE_DB}"
            + ("" if args.keep_db else ", dropping the db")
        )
        _cleanup(procs, keep_db=args.keep_db)

    duration = time.monotonic() - started
    meta["duration_seconds"] = round(duration, 1)
    meta["load_average"] = load
    meta["foreign_cpu_share"] = busy
    if failed:
        meta["failed"] = failed
    print()
    print(report.table(run.figures))
    misses = [f for f in run.figures if f.ok is False]
    print()
    if failed:
        print(f"The run did not finish: {failed}")
    if misses:
        print("Misses: " + "; ".join(f"{f.label} = {f.shown} (target {f.target})" for f in misses))
    elif run.figures and not failed:
        print("Every target is met.")
    print(f"Machine: {report.machine_line(info)}; took {duration / 60:.1f} min; load at start {load['start']}")
    disturbed = {name: share for name, share in busy.items() if share > 0.1}
    if disturbed:
        print(
            "WARNING: other processes loaded the machine during "
            + ", ".join(f"{name} ({share:.0%} of its CPU)" for name, share in disturbed.items())
            + ": those figures are not meaningful"
        )
    report.write_json(RESULTS / "results.json", figures=run.figures, details=run.details, meta=meta)
    report.write_svg(
        RESULTS / "results.svg",
        run.figures,
        title=f"make bench, {meta['date']}: share of each target (longer is better)",
    )
    print(f"Wrote {RESULTS / 'results.json'} and {RESULTS / 'results.svg'}")
    if args.update_readme and run.figures:
        block = report.markdown(run.figures, when=meta["date"], info=info, duration_s=duration, quick=args.quick)
        if report.update_readme(ROOT / "README.md", block):
            print("Updated the results table in README.md")
    return 1 if failed or misses else 0


if __name__ == "__main__":
    sys.exit(main())
