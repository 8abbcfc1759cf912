"""What the machine allows, measured in the same run as the API: the PostgreSQL ceiling of the
`add` and `status` shapes (pgbench, custom scripts, the API's 32 clients) and a bare-WSGI floor
(`floor_app` under the same gunicorn configuration and the same wrk script as `add`).

Each API figure is then printed as a share of them, so a change of machine does not hide a
regression: 3 % of the database's ceiling means the time goes in our Python.

- `add` shape: the statements placing one order runs, in one transaction, with nothing in
  between: the customer's row lock, the duplicate-link check, the order INSERT, the
  conditional wallet debit (UPDATE … WHERE balance >= … RETURNING), the ledger INSERT and the
  event INSERT, then COMMIT. On customers of its own, removed afterwards, so the ledger audit
  and the other phases never see them.
- `status` shape: 100 rows of one customer by an id array, the API's own query, with the same
  id lists as the API phase (kept in a scratch table, dropped afterwards).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

IDS_TABLE = "bench_ceiling_ids"
PREFIX = "ceiling"


def available() -> bool:
    return shutil.which("pgbench") is not None


def floor_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The least a WSGI server can do for an API call: read the form body, answer small JSON."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    body = b'{"order":1}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _literal(value: Any) -> str:
    from django.db import connection
    from psycopg import sql

    connection.ensure_connection()
    return sql.Literal(value).as_string(connection.connection)


def _insert(model: Any, instance: Any, overrides: dict[str, str], *, returning: str = "") -> str:
    """An INSERT of every concrete column but the primary key: `overrides` are SQL (pgbench
    variables), the rest are the instance's values as Django would save them."""
    from django.db import connection

    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in overrides:
            values.append(overrides[field.attname])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        else:
            value = field.get_db_prep_save(field.pre_save(instance, add=True), connection)
            values.append(f"CAST({_literal(value)} AS {field.db_type(connection)})")
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) VALUES ({', '.join(values)})"
    return sql + (f" RETURNING {returning}" if returning else "")


def add_setup(*, customers: int, service_id: int) -> tuple[str, tuple[int, int]]:
    """Customers of the ceiling's own (funded wallets) and the pgbench script of the `add`
    shape; returns (script, (first user id, last user id))."""
    from django.db import connection

    from catalog.models import Route
    from orders.models import ACTIVE_STATUSES, Order, OrderEvent, State, Status
    from tests.bench import seed
    from wallets.models import Entry

    made = seed.seed_customers(count=customers, prefix=PREFIX)
    first, last = made.first_id, made.first_id + customers - 1
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO wallets_wallet (user_id, balance, debt) SELECT g, 1000000000, 0 FROM generate_series(%s, %s) g",
            [first, last],
        )
    route = Route.objects.select_related("upstream__provider", "service").filter(service_id=service_id).first()
    assert route is not None
    service = route.service
    order = Order(
        user_id=first,
        service=service,
        service_type=service.type,
        route=route,
        provider=route.upstream.provider,
        external_service_id=route.upstream.external_id,
        link="",
        quantity=100,
        billing=100,
        fields={},
        price_per_1000=service.price,
        charge=service.price / 10,
        provider_rate=route.upstream.rate,
        cost=route.upstream.rate / 10,
        status=Status.PENDING,
        state=State.QUEUED,
        request_fingerprint="0" * 64,
    )
    charge = _literal(order.charge)
    link = "'https://ceiling.example/' || :client_id || '/' || :n"
    entry = Entry(amount=-order.charge, kind=Entry.Kind.CHARGE, idempotency_key="x", memo="ceiling")
    event = OrderEvent(to_status=Status.PENDING, to_state=State.QUEUED, reason="placed")
    statuses = ", ".join(_literal(s) for s in ACTIVE_STATUSES)
    script = "\n".join(
        [
            f"\\set u random({first}, {last})",
            "\\set n random(1, 2000000000)",
            "BEGIN;",
            "SELECT id FROM accounts_user WHERE id = :u FOR NO KEY UPDATE;",
            f"SELECT 1 AS dup FROM orders_order WHERE user_id = :u AND service_id = {service.pk} "
            f"AND status IN ({statuses}) AND link = {link} LIMIT 1;",
            _insert(Order, order, {"user_id": ":u", "link": link}, returning="id AS order_id") + " \\gset",
            f"UPDATE wallets_wallet SET balance = balance - {charge} WHERE user_id = :u AND balance >= {charge} "
            "RETURNING balance AS after \\gset",
            _insert(
                Entry,
                entry,
                {
                    "user_id": ":u",
                    "idempotency_key": "'order:' || :order_id || ':charge'",
                    "order_ref": ":order_id",
                    "balance_after": ":after",
                },
            )
            + ";",
            _insert(OrderEvent, event, {"order_id": ":order_id", "actor_id": ":u"}) + ";",
            "COMMIT;",
        ]
    )
    return script, (first, last)


def add_cleanup(users: tuple[int, int]) -> None:
    """Everything the `add` ceiling wrote, and its customers, gone."""
    from django.db import connection

    first, last = users
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM orders_orderevent WHERE order_id IN "
            "(SELECT id FROM orders_order WHERE user_id BETWEEN %s AND %s)",
            [first, last],
        )
        for table in ("wallets_entry", "orders_order", "wallets_wallet"):
            cursor.execute(f"DELETE FROM {table} WHERE user_id BETWEEN %s AND %s", [first, last])
        cursor.execute("DELETE FROM accounts_user WHERE id BETWEEN %s AND %s", [first, last])


def status_setup(*, user_ids: Sequence[int], id_lists: Sequence[str]) -> str:
    """The id lists of the API phase in a scratch table, and the pgbench script of `status`."""
    from django.db import connection

    rows = [
        (n + 1, uid, [int(i) for i in ids.split(",") if i])
        for n, (uid, ids) in enumerate(zip(user_ids, id_lists, strict=True))
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {IDS_TABLE}")
        cursor.execute(f"CREATE TABLE {IDS_TABLE} (n integer PRIMARY KEY, uid bigint, ids bigint[])")
        cursor.executemany(f"INSERT INTO {IDS_TABLE} VALUES (%s, %s, %s)", rows)
        cursor.execute(f"ANALYZE {IDS_TABLE}")
    return "\n".join(
        [
            f"\\set n random(1, {len(rows)})",
            # The API's query (api/actions.py _status_rows), its two parameters read by key.
            "SELECT o.id, o.charge, o.start_count, o.status, o.remains, o.quantity FROM orders_order o "
            f"WHERE o.user_id = (SELECT uid FROM {IDS_TABLE} WHERE n = :n) "
            f"AND o.id = ANY((SELECT ids FROM {IDS_TABLE} WHERE n = :n)::bigint[]);",
        ]
    )


def status_cleanup() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {IDS_TABLE}")


def pgbench(script: str, *, url: str, seconds: int, clients: int, threads: int = 2) -> dict[str, float]:
    """Run pgbench with this custom script: transactions per second and the latency it saw."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script + "\n")
    try:
        out = subprocess.run(
            ["pgbench", "-n", "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-f", f.name, url],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
        )
    finally:
        Path(f.name).unlink(missing_ok=True)
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    if out.returncode != 0 or not tps or not done:
        raise RuntimeError(f"pgbench failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return {
        "tps": round(float(tps.group(1)), 1),
        "transactions": int(done.group(1)),
        "failed": int(failed.group(1)) if failed else 0,
        "latency_ms": float(latency.group(1)) if latency else 0.0,
        "clients": clients,
        "seconds": seconds,
    }


def share(part: float | None, whole: float | None) -> float | None:
    """part as a percentage of whole, one decimal."""
    if not part or not whole:
        return None
    return round(part / whole * 100, 1)
