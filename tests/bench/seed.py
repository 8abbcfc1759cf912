"""Realistic data for the benchmarks, fast: the catalogue through the real provider sync and
import, customers and orders with `INSERT … SELECT … FROM generate_series`, and a ledger that the audit accepts.

Orders are spread over customers the way a panel's are, a few resellers owning most of them:
customer index ⌊n·r³⌋ for r equidistributed in [0, 1) (so the first customer has about 5 %
of all orders and the top thousand each have hundreds).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, models

FREE_BALANCE = Decimal("1000")
# Historical upstream ids are far above what the simulator hands out in one run.
HISTORICAL_UPSTREAM_BASE = 900_000_000


def insert_series(
    model: type[models.Model],
    *,
    count: int,
    template: models.Model,
    varying: Mapping[str, str],
    source: str = "generate_series(1, %(count)s) AS g",
    params: Mapping[str, Any] | None = None,
) -> None:
    """INSERT `count` rows of `model` in one statement: every column from `template` (prepared
    by Django, so defaults and JSON come out right) except the `varying` ones, which are SQL
    expressions of the series `g` (and whatever `source` joins in)."""
    columns, values = [], []
    sql_params: dict[str, Any] = {"count": count, **(params or {})}
    for field in model._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in varying:
            values.append(varying[field.attname])
        else:
            name = f"t_{field.attname}"
            sql_params[name] = field.get_db_prep_save(field.pre_save(template, add=True), connection)
            values.append(f"CAST(%({name})s AS {field.db_type(connection)})")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # names from the model
            f"SELECT {', '.join(values)} FROM {source}",
            sql_params,
        )


def _max_id(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # a table name from the model
        return int(cursor.fetchone()[0])


def _reset_sequence(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


# --- Catalogue ---------------------------------------------------------------------------------
def seed_catalogue(*, api_url: str, api_key: str) -> Any:
    """A provider at the simulator, all of its services mirrored and imported (the real code)."""
    from catalog.models import Service
    from catalog.services import catalog_import_upstream, provider_sync
    from providers.models import Provider, UpstreamService

    provider = Provider.objects.create(name="Bench provider", api_url=api_url, api_key=api_key)
    provider_sync(provider=provider)
    catalog_import_upstream(upstream_ids=UpstreamService.objects.filter(provider=provider).values_list("pk", flat=True))
    assert Service.objects.exists()
    return provider


def orderable_services(*, quantity: int) -> list[int]:
    """Enabled Default services that take `quantity` units (what the API add benchmark buys)."""
    from catalog.models import Service

    return list(
        Service.objects.filter(
            type="Default", is_enabled=True, min_quantity__lte=quantity, max_quantity__gte=quantity
        ).values_list("pk", flat=True)
    )


# --- Customers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Customers:
    first_id: int
    count: int

    def user_id(self, index: int) -> int:
        return self.first_id + index


def seed_customers(*, count: int, prefix: str = "customer") -> Customers:
    """`count` customers (no wallets yet: seed_ledger makes them), ids contiguous."""
    from accounts.models import User

    base = _max_id("accounts_user")
    template = User(username="x", email="x@example.com", password="!bench-unusable")
    insert_series(
        User,
        count=count,
        template=template,
        varying={
            "id": "%(base)s + g",
            "username": f"'{prefix}' || g",
            "email": f"'{prefix}' || g || '@bench.example'",
            "date_joined": "now() - (g || ' hours')::interval",
        },
        params={"base": base},
    )
    _reset_sequence("accounts_user")
    return Customers(first_id=base + 1, count=count)


def seed_api_keys(*, user_ids: list[int]) -> list[str]:
    """An API key for each of these customers; the raw keys, in the same order."""
    from accounts.models import ApiKey
    from accounts.services import KEY_PREFIX_LEN, api_key_digest

    raw = [secrets.token_hex(32) for _ in user_ids]
    ApiKey.objects.bulk_create(
        [
            ApiKey(user_id=uid, prefix=key[:KEY_PREFIX_LEN], digest=api_key_digest(raw_key=key))
            for uid, key in zip(user_ids, raw, strict=True)
        ],
        batch_size=1000,
    )
    return raw


# --- Orders --------------------------------------------------------------------------------------
# The catalogue numbered 0..n-1 with what an order snapshots from its service and route.
_SERVICES = """
    (SELECT s.id, s.type, s.price, s.min_quantity, s.max_quantity, r.id AS route_id, u.provider_id,
            u.external_id, u.rate, (row_number() OVER (ORDER BY s.id)) - 1 AS rn
     FROM catalog_service s
     JOIN catalog_route r ON r.service_id = s.id AND r.priority = 1
     JOIN providers_upstreamservice u ON u.id = r.upstream_id
     %(service_filter)s)
"""


def _order_source(service_filter: str = "") -> str:
    """The series `g`, each row with service number g mod %(services)s and its quantity `q`."""
    return (
        "(SELECT g, svc.*, LEAST(GREATEST(svc.min_quantity, %(quantity)s), svc.max_quantity) AS q "
        "FROM generate_series(1, %(count)s) AS g "
        f"JOIN {_SERVICES % {'service_filter': service_filter}} svc ON svc.rn = g %% %(services)s) AS x"
    )


def _count_routed_services() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(DISTINCT service_id) FROM catalog_route WHERE priority = 1")
        return int(cursor.fetchone()[0])


def seed_history(*, customers: Customers, count: int, span_days: int = 365) -> tuple[int, int]:
    """`count` finished orders over the last `span_days`, spread over the customers (a few
    resellers owning most), every catalogue service; the (first, last) order id."""
    from orders.models import Order

    base = _max_id("orders_order")
    template = Order(user_id=customers.first_id, service_id=0, quantity=1, price_per_1000=0, charge=0)
    when = "now() - ((%(count)s - g)::float8 * %(span)s / %(count)s) * interval '1 second'"
    insert_series(
        Order,
        count=count,
        template=template,
        source=_order_source(),
        varying={
            "id": "%(base)s + g",
            "user_id": "%(first_user)s + FLOOR(%(users)s * POWER((g * 0.6180339887498949) %% 1, 3))::bigint",
            "service_id": "x.id",
            "service_type": "x.type",
            "route_id": "x.route_id",
            "provider_id": "x.provider_id",
            "external_service_id": "x.external_id",
            "link": "'https://instagram.com/p/h' || g",
            "quantity": "x.q",
            "fields": "jsonb_build_object('link', 'https://instagram.com/p/h' || g, 'quantity', x.q)",
            "price_per_1000": "x.price",
            "charge": "GREATEST(ROUND(x.price * x.q / 1000, 5), 0.00001)",
            "provider_rate": "x.rate",
            "cost": "ROUND(x.rate * x.q / 1000, 5)",
            # 85 % Completed, 8 % Partial (when there is more than one unit), 7 % Canceled.
            "status": "CASE WHEN g %% 100 < 85 OR (g %% 100 < 93 AND x.q < 2) THEN 'Completed' "
            "WHEN g %% 100 < 93 THEN 'Partial' ELSE 'Canceled' END",
            "remains": "CASE WHEN g %% 100 < 85 OR (g %% 100 < 93 AND x.q < 2) THEN 0 "
            "WHEN g %% 100 < 93 THEN 1 + (g %% (x.q - 1)) ELSE x.q END",
            "start_count": "100 + g %% 5000",
            "state": "'sent'",
            "provider_order_id": f"({HISTORICAL_UPSTREAM_BASE} + %(base)s + g)::text",
            "attempts": "1",
            "created_at": when,
            "sending_started_at": f"{when} + interval '1 second'",
            "sent_at": f"{when} + interval '2 seconds'",
            "last_checked_at": f"LEAST({when} + interval '1 hour', now())",
            "completed_at": f"LEAST({when} + interval '1 hour', now())",
            "updated_at": f"LEAST({when} + interval '1 hour', now())",
        },
        params={
            "base": base,
            "first_user": customers.first_id,
            "users": customers.count,
            "span": span_days * 86400,
            "quantity": 1000,
            "services": _count_routed_services(),
        },
    )
    _reset_sequence("orders_order")
    return base + 1, base + count


def seed_active(*, user_id: int, upstream_ids: tuple[int, int], service_id: int, quantity: int) -> tuple[int, int]:
    """Sent, still Pending orders of one customer, one per upstream id in the inclusive range
    (orders the simulator holds), never checked yet; the (first, last) order id."""
    from orders.models import Order

    first_upstream, last_upstream = upstream_ids
    count = last_upstream - first_upstream + 1
    base = _max_id("orders_order")
    template = Order(user_id=user_id, service_id=service_id, quantity=quantity, price_per_1000=0, charge=0)
    insert_series(
        Order,
        count=count,
        template=template,
        source=_order_source("WHERE s.id = %(service)s"),
        varying={
            "id": "%(base)s + g",
            "service_type": "x.type",
            "route_id": "x.route_id",
            "provider_id": "x.provider_id",
            "external_service_id": "x.external_id",
            "link": "'https://bench.example/bulk/' || (g - 1)",
            "quantity": "x.q",
            "fields": "jsonb_build_object('link', 'https://bench.example/bulk/' || (g - 1), 'quantity', x.q)",
            "price_per_1000": "x.price",
            "charge": "GREATEST(ROUND(x.price * x.q / 1000, 5), 0.00001)",
            "provider_rate": "x.rate",
            "cost": "ROUND(x.rate * x.q / 1000, 5)",
            "status": "'Pending'",
            "state": "'sent'",
            "provider_order_id": "(%(first_upstream)s + g - 1)::text",
            "attempts": "1",
            "created_at": "now() - interval '10 minutes'",
            "sending_started_at": "now() - interval '10 minutes'",
            "sent_at": "now() - interval '10 minutes'",
            "updated_at": "now() - interval '10 minutes'",
        },
        params={
            "base": base,
            "service": service_id,
            "services": 1,
            "quantity": quantity,
            "first_upstream": first_upstream,
        },
    )
    _reset_sequence("orders_order")
    return base + 1, base + count


# --- Ledger --------------------------------------------------------------------------------------
def seed_ledger(*, first_user: int, last_user: int, first_order: int) -> None:
    """Wallets and ledger entries for customers who have none yet: a deposit covering all their
    orders from `first_order` on plus FREE_BALANCE, then each order's charge and refund in id
    order, with balance_after as the running sum, exactly as the wallet services write them."""
    entry_base = _max_id("wallets_entry")
    users = last_user - first_user + 1
    with connection.cursor() as cursor:
        # The running sums sort every entry once: in memory, not in temporary files.
        cursor.execute("SET work_mem = '512MB'")
        cursor.execute(
            """
            WITH spent AS (
                SELECT user_id, SUM(charge) AS total FROM orders_order
                WHERE id >= %(first_order)s AND user_id BETWEEN %(first_user)s AND %(last_user)s
                GROUP BY user_id
            ),
            moves AS (
                SELECT u.id AS user_id, COALESCE(s.total, 0) + %(free)s AS amount, 'deposit' AS kind,
                       'bench:deposit:' || u.id AS key, NULL::bigint AS order_ref, u.id - %(first_user)s AS seq,
                       u.date_joined AS at
                FROM accounts_user u LEFT JOIN spent s ON s.user_id = u.id
                WHERE u.id BETWEEN %(first_user)s AND %(last_user)s
              UNION ALL
                SELECT o.user_id, -o.charge, 'charge', 'order:' || o.id || ':charge', o.id,
                       %(users)s + 2 * (o.id - %(first_order)s), o.created_at
                FROM orders_order o
                WHERE o.id >= %(first_order)s AND o.user_id BETWEEN %(first_user)s AND %(last_user)s
              UNION ALL
                SELECT o.user_id,
                       CASE o.status WHEN 'Canceled' THEN o.charge
                                     ELSE LEAST(TRUNC(o.charge * o.remains / o.quantity, 5), o.charge) END,
                       'refund', 'order:' || o.id || ':refund', o.id, %(users)s + 2 * (o.id - %(first_order)s) + 1,
                       o.completed_at
                FROM orders_order o
                WHERE o.id >= %(first_order)s AND o.user_id BETWEEN %(first_user)s AND %(last_user)s
                  AND (o.status = 'Canceled' OR (o.status = 'Partial' AND TRUNC(o.charge * o.remains / o.quantity, 5) > 0))
            )
            INSERT INTO wallets_entry
                (id, user_id, amount, kind, idempotency_key, order_ref, memo, balance_after, owed, created_at)
            SELECT %(entry_base)s + 1 + seq, user_id, amount, kind, key, order_ref, '',
                   SUM(amount) OVER (PARTITION BY user_id ORDER BY seq), 0, at
            FROM moves
            """,
            {
                "first_user": first_user,
                "last_user": last_user,
                "first_order": first_order,
                "users": users,
                "entry_base": entry_base,
                "free": FREE_BALANCE,
            },
        )
        cursor.execute(
            "INSERT INTO wallets_wallet (user_id, balance, debt) SELECT user_id, SUM(amount), 0 FROM wallets_entry "
            "WHERE user_id BETWEEN %s AND %s GROUP BY user_id",
            [first_user, last_user],
        )
        cursor.execute("RESET work_mem")
    _reset_sequence("wallets_entry")


TABLES = (
    "accounts_user",
    "orders_order",
    "orders_orderevent",
    "wallets_entry",
    "wallets_wallet",
    "accounts_apikey",
    "providers_providercall",
)


def vacuum_analyze(*, tables: tuple[str, ...] = TABLES, vacuum: bool = True) -> None:
    """What autovacuum would have done by now on a live database (visibility map, statistics)."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {table}")


def settle() -> None:
    """Before a phase: vacuum what the previous phase changed and write its dirty pages out, so
    that a phase does not pay for its predecessor's autovacuum or checkpoint."""
    vacuum_analyze()
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
