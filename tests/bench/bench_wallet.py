"""Wallet throughput: debits per second on ONE wallet from 16 threads, and the ledger audit at scale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test python -m tests.bench.bench_wallet \
        [--threads 16] [--seconds 10] [--audit-orders 1000000]

All debits hit the same wallet row, so this measures the hot path where it is slowest:
every debit waits for the row lock held by the previous one until it commits. The run
uses its own database, `<name of DATABASE_URL's database>_bench_wallet` on the same
server, created and migrated at the start and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from decimal import Decimal
from urllib.parse import urlsplit

from tests.bench.setup import setup_django, timed


def _bench_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/test")
    parts = urlsplit(url)
    return parts._replace(path=f"/{parts.path.lstrip('/') or 'postgres'}_bench_wallet").geturl()


def _drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def bench_debits(*, threads: int, seconds: float) -> dict[str, float]:
    from django.db import connection

    from accounts.models import User
    from wallets.models import Entry, Wallet
    from wallets.services import wallet_credit, wallet_debit

    user = User.objects.create(username=f"bench-{threads}", email=f"bench-{threads}@example.com")
    start_balance = Decimal("1000000000")
    wallet_credit(user=user, amount=start_balance, kind=Entry.Kind.DEPOSIT, idempotency_key=f"bench:{threads}:seed")
    amount = Decimal("0.01")
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            connection.ensure_connection()  # connect before the clock starts
            barrier.wait()
            i = 0
            while not stop.is_set():
                began = time.perf_counter()
                wallet_debit(
                    user=user, amount=amount, kind=Entry.Kind.ADJUSTMENT, idempotency_key=f"bench:{threads}:{n}:{i}"
                )
                latencies[n].append(time.perf_counter() - began)
                i += 1
            counts[n] = i
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]

    total = sum(counts)
    balance = Wallet.objects.get(user=user).balance
    assert balance == start_balance - amount * total, (balance, total)
    assert Entry.objects.filter(user=user, kind=Entry.Kind.ADJUSTMENT).count() == total
    flat = sorted(x for per_thread in latencies for x in per_thread)
    return {
        "threads": threads,
        "debits": total,
        "seconds": round(elapsed, 2),
        "debits_per_second": round(total / elapsed, 1),
        "latency_ms_median": round(statistics.median(flat) * 1000, 2),
        "latency_ms_p99": round(flat[int(len(flat) * 0.99)] * 1000, 2),
    }


def seed_orders(*, count: int, users: int = 1000) -> None:
    """`count` orders with their charges and refunds, all consistent, written set-based in SQL."""
    from django.db import connection, transaction

    from accounts.models import User
    from orders.models import Order
    from tests.factories import ServiceFactory

    service = ServiceFactory()
    people = User.objects.bulk_create(
        [User(username=f"audit-{i}", email=f"audit-{i}@example.com") for i in range(users)]
    )
    first_user = min(u.pk for u in people)
    # Every constant column of an order comes from one template row, prepared by Django.
    template = Order(
        user_id=first_user, service=service, quantity=1000, price_per_1000=Decimal("1"), charge=Decimal("1")
    )
    varying = {
        "id": "%(order_base)s + g",
        "user_id": f"{first_user} + (g %% {users})",
        "charge": "1 + (g %% 7) * 0.01",
        "status": "(ARRAY['Completed','Completed','Completed','Completed','Completed','Completed',"
        "'Canceled','Partial','In progress','Pending'])[g %% 10 + 1]",
        "remains": "CASE g %% 10 WHEN 6 THEN 1000 WHEN 7 THEN 300 ELSE NULL END",
    }
    columns, values, params = [], [], {}
    for field in Order._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in varying:
            values.append(varying[field.attname])
        else:
            params[field.attname] = field.get_db_prep_save(field.pre_save(template, add=True), connection)
            values.append(f"CAST(%({field.attname})s AS {field.db_type(connection)})")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM orders_order")
        params["order_base"] = cursor.fetchone()[0]
        params["count"] = count
        cursor.execute(
            f"INSERT INTO orders_order ({', '.join(columns)}) "  # column names from the model
            f"SELECT {', '.join(values)} FROM generate_series(1, %(count)s) AS g",
            params,
        )
        # The ledger: a deposit per user, then each order's charge and refund, in id order,
        # with balance_after as the running sum per user, exactly as the services write it.
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM wallets_entry")
        entry_base = cursor.fetchone()[0]
        cursor.execute(
            """
            WITH moves AS (
                SELECT u.id AS user_id, 1000000::numeric AS amount, 'deposit' AS kind,
                       'bench:deposit:' || u.id AS key, NULL::bigint AS order_ref, u.id - %(first_user)s AS seq
                FROM accounts_user u WHERE u.id >= %(first_user)s
              UNION ALL
                SELECT o.user_id, -o.charge, 'charge', 'order:' || o.id || ':charge', o.id,
                       %(users)s + 2 * (o.id - %(order_base)s)
                FROM orders_order o WHERE o.id > %(order_base)s
              UNION ALL
                SELECT o.user_id,
                       CASE o.status WHEN 'Canceled' THEN o.charge
                                     ELSE TRUNC(o.charge * o.remains / o.quantity, 5) END,
                       'refund', 'order:' || o.id || ':refund', o.id, %(users)s + 2 * (o.id - %(order_base)s) + 1
                FROM orders_order o WHERE o.id > %(order_base)s AND o.status IN ('Canceled', 'Partial')
            )
            INSERT INTO wallets_entry
                (id, user_id, amount, kind, idempotency_key, order_ref, memo, balance_after, created_at)
            SELECT %(entry_base)s + 1 + seq, user_id, amount, kind, key, order_ref, '',
                   SUM(amount) OVER (PARTITION BY user_id ORDER BY seq), now()
            FROM moves
            """,
            {"first_user": first_user, "users": users, "order_base": params["order_base"], "entry_base": entry_base},
        )
        cursor.execute(
            "INSERT INTO wallets_wallet (user_id, balance) SELECT user_id, SUM(amount) FROM wallets_entry "
            "WHERE user_id >= %s GROUP BY user_id",
            [first_user],
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('wallets_entry', 'id'), (SELECT MAX(id) FROM wallets_entry))"
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('orders_order', 'id'), (SELECT MAX(id) FROM orders_order))"
        )
        cursor.execute("ANALYZE orders_order; ANALYZE wallets_entry; ANALYZE wallets_wallet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--audit-orders", type=int, default=0, help="Also time ledger_audit over this many orders.")
    args = parser.parse_args()

    url = _bench_url()
    os.environ["BENCH_DATABASE_URL"] = url
    setup_django(fresh=True)
    results: dict[str, object] = {}
    try:
        results["single_thread"] = bench_debits(threads=1, seconds=min(args.seconds, 5.0))
        results["concurrent"] = bench_debits(threads=args.threads, seconds=args.seconds)
        print(json.dumps(results["concurrent"]), file=sys.stderr)
        if args.audit_orders:
            from wallets.audit import ledger_audit_run

            timings: dict[str, float] = {}
            with timed(f"seed {args.audit_orders} orders with their ledger", timings):
                seed_orders(count=args.audit_orders)
            with timed(f"ledger_audit over {args.audit_orders} orders", timings):
                report = ledger_audit_run()
            assert report.ok, report.lines()[:10]
            results["audit"] = {"orders": report.orders, "entries": report.entries, "seconds": timings}
        print(json.dumps(results, indent=2, default=str))
    finally:
        _drop_database(url)


if __name__ == "__main__":
    main()
