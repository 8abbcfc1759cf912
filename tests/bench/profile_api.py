"""CPU per API request in the web process, and where it goes: the WSGI application called
in-process (no HTTP server, no load generator), measured by the process's own CPU clock and
profiled with cProfile. What `make bench` meters as "gunicorn" minus gunicorn's own parsing.

    BENCH_DATABASE_URL=... .venv/bin/python -m tests.bench.profile_api add|status|balance [--n 500] [--top 30]
    ... profile_api add --parts     what of an `add` is the request, the placing and the publish

`balance` is the smallest keyed call (key, rate limit, one read): the floor every action pays.

Runs on a database `make bench --keep-db` (or `--quick --keep-db`) left behind, with the
settings the bench uses; it issues API keys to the customers of its own it needs.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from typing import Any
from urllib.parse import urlencode


def _environ(body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v2",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("add", "status", "balance"))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true", help="only the CPU per request")
    parser.add_argument(
        "--parts", action="store_true", help="add: also the CPU of order_place alone and of its publish alone"
    )
    args = parser.parse_args(argv)

    from tests.bench.run_all import Plan, bench_env

    os.environ.update({k: v for k, v in bench_env(Plan()).items() if k not in os.environ or k == "DJANGO_DEBUG"})
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    os.environ["API_RATE_LIMIT_PER_KEY"] = "1000000/m"
    import django

    django.setup()
    from accounts.models import ApiKey, User
    from orders.models import Order
    from tests.bench import seed

    keyless = User.objects.filter(username__startswith="customer").exclude(pk__in=ApiKey.objects.values("user_id"))
    users = list(keyless.order_by("id").values_list("id", flat=True)[:16])
    keys = seed.seed_api_keys(user_ids=users)
    services = seed.orderable_services(quantity=100)
    ids = {
        uid: ",".join(
            str(i) for i in Order.objects.filter(user_id=uid).order_by("-id").values_list("id", flat=True)[:100]
        )
        for uid in users
    }
    from smmpanel.wsgi import application as app  # what gunicorn serves

    run = os.urandom(3).hex()

    def body(i: int) -> bytes:
        n = i % len(keys)
        if args.action == "status":
            return urlencode({"key": keys[n], "action": "status", "orders": ids[users[n]]}).encode()
        if args.action == "balance":
            return urlencode({"key": keys[n], "action": "balance"}).encode()
        link = f"https://instagram.com/p/prof{run}x{i}"
        return urlencode(
            {"key": keys[n], "action": "add", "service": services[i % len(services)], "link": link, "quantity": 100}
        ).encode()

    def call(data: bytes) -> None:
        replies: list[str] = []
        chunks = app(_environ(data), lambda status, headers: replies.append(status))
        data = b"".join(chunks)
        if not replies[0].startswith("200") or b'"error"' in data:
            raise RuntimeError(f"{replies[0]} {data[:200]!r}")

    for i in range(50):  # warm: imports, connections, caches
        call(body(i))
    bodies = [body(i) for i in range(50, 50 + 2 * args.n)]  # made before the clock starts
    backend = _backend_pid()
    began, cpu, db = time.perf_counter(), time.process_time(), _process_cpu(backend)
    for data in bodies[: args.n]:
        call(data)
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    db_used = _process_cpu(backend) - db
    print(
        f"{args.action}: {used / args.n * 1000:.2f} ms CPU per request in this process ({wall / args.n * 1000:.2f} ms wall);"
        f" its PostgreSQL backend {db_used / args.n * 1000:.2f} ms"
    )
    if args.parts and args.action == "add":
        _parts(users=users, services=services, n=args.n, run=run)
    if not args.no_profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for data in bodies[args.n :]:
            call(data)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    return 0


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process on this machine, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ms(call: Any, n: int) -> float:
    for i in range(20):
        call(-1 - i)
    began = time.process_time()
    for i in range(n):
        call(i)
    return (time.process_time() - began) / n * 1000


def _parts(*, users: list[int], services: list[int], n: int, run: str) -> None:
    """The CPU of an order's placing called directly (its transaction, commit and publish, no
    HTTP), and of the publish alone (what the commit hook sends to the broker)."""
    from accounts.models import User
    from orders import tasks
    from orders.services import order_place
    from orders.services.outbox import _publish

    people = list(User.objects.filter(pk__in=users))

    def place(i: int) -> None:
        link = f"https://instagram.com/p/part{run}x{i}"
        order_place(
            user=people[i % len(people)], service_id=services[i % len(services)], fields={"link": link, "quantity": 100}
        )

    placing = _cpu_ms(place, n)
    publish = _cpu_ms(lambda i: _publish(tasks.order_submit_task, countdown=None, order_id=10**12 + i), n)
    print(f"order_place alone: {placing:.2f} ms CPU (of which the broker publish: {publish:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
