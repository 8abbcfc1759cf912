"""The orders app's raw SQL, in one place: the statements the ORM cannot say in one round
trip, and the API's hot path written out. Column names come from the models; every value
is a parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, models

from kernel import db as kernel_db
from kernel.db import hot_cursor, insert_parts

from .models import ACTIVE_STATUSES, Order, OrderEvent, RoutingDecision, State


def transition_in_one_statement(*, order: Order, values: Mapping[str, Any], event: OrderEvent | None) -> bool:
    """order_transition's compare-and-set UPDATE and its OrderEvent INSERT as one PostgreSQL
    statement (a data-modifying WITH): both happen or neither, and only if the row still has
    the status and state the caller read. True when it moved."""
    assignments, params = [], []
    for name, value in values.items():
        field = Order._meta.get_field(name)
        assert isinstance(field, models.Field)
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value.pk if isinstance(value, models.Model) else value, connection))
    params += [order.pk, order.status, order.state]
    # Column names come from the model, values are parameters.
    update = "UPDATE orders_order SET " + ", ".join(assignments) + " WHERE id = %s AND status = %s AND state = %s"  # noqa: S608
    with connection.cursor() as cursor:
        if event is None:
            cursor.execute(update, params)
            return bool(cursor.rowcount == 1)
        columns, event_params = [], []
        for field in OrderEvent._meta.concrete_fields:
            if field.primary_key or field.attname == "order_id":
                continue
            columns.append(connection.ops.quote_name(field.column))
            event_params.append(field.get_db_prep_save(getattr(event, field.attname), connection))
        cursor.execute(
            "WITH moved AS (" + update + " RETURNING id) "  # noqa: S608
            "INSERT INTO orders_orderevent (order_id, " + ", ".join(columns) + ") "
            "SELECT id, " + ", ".join(["%s"] * len(columns)) + " FROM moved",
            params + event_params,
        )
        return bool(cursor.rowcount == 1)


def sync_unchanged_many(*, rows: Sequence[tuple[Any, ...]], now: datetime) -> set[int]:
    """Status replies that change no status, a whole chunk in one UPDATE (PostgreSQL), each
    row compared-and-set on its own: still sent, still in the status read. A row is (id,
    status read, flag, note, start count, remains, provider charge); None keeps a value.
    Returns the ids it applied."""
    values = ", ".join(
        ["(%s::bigint, %s::varchar, %s::boolean, %s::varchar, %s::bigint, %s::bigint, %s::numeric)"] * len(rows)
    )
    sql = (  # only placeholders are joined in
        "UPDATE orders_order AS o SET sync_flag = v.flag, sync_note = v.note, "  # noqa: S608
        "start_count = COALESCE(v.start_count, o.start_count), remains = COALESCE(v.remains, o.remains), "
        "provider_charge = COALESCE(v.charge, o.provider_charge), last_checked_at = %s, updated_at = %s "
        "FROM (VALUES " + values + ") AS v(id, status, flag, note, start_count, remains, charge) "
        "WHERE o.id = v.id AND o.state = %s AND o.status = v.status RETURNING o.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *(x for row in rows for x in row), State.SENT])
        return {pk for (pk,) in cursor.fetchall()}


STATUS_COLUMNS = ("id", "charge", "start_count", "status", "remains", "quantity")


def status_rows(*, user_id: int, pks: Sequence[int]) -> list[tuple[Any, ...]]:
    """(id, charge, start count, status, remains, quantity) of this customer's orders among
    `pks`: the API's `status` of up to 100 ids. Written out on PostgreSQL (one array
    parameter, no queryset to compile on every call, a statement prepared once per
    connection: kernel.db.hot_cursor); elsewhere the ORM."""
    if not kernel_db.written_out():
        return list(Order.objects.filter(user_id=user_id, pk__in=pks).order_by().values_list(*STATUS_COLUMNS))
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT id, charge, start_count, status, remains, quantity FROM orders_order "
            "WHERE user_id = %s::bigint AND id = ANY(%s::bigint[])",
            # The array as PostgreSQL's text form: psycopg would dump it number by number.
            [user_id, "{" + ",".join(str(int(pk)) for pk in pks) + "}"],
        )
        return list(cursor.fetchall())


# --- Placing, written out (PostgreSQL) ------------------------------------------------------
# order_place's transaction in three statements instead of eight, none compiled by the ORM,
# each prepared once per connection (kernel.db.hot_cursor). The statements and their order
# are the ORM path's (orders/services/placing.py), which SQLite still takes.

# Literals, not a parameter: the duplicate check's partial index (order_user_service_active)
# is chosen only when the planner sees these very statuses, also in a prepared statement.
_ACTIVE_SQL = ", ".join("'" + status.replace("'", "''") + "'" for status in ACTIVE_STATUSES)


def placing_lock_customer(*, user_id: int) -> None:
    """The customer's row, FOR NO KEY UPDATE: serialises their placements (see placing.py)."""
    table = connection.ops.quote_name(get_user_model()._meta.db_table)
    with hot_cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = %s::bigint FOR NO KEY UPDATE", [user_id])  # noqa: S608


def order_insert_placed(
    *, order: Order, decision: RoutingDecision, event: OrderEvent, unless_duplicate: bool
) -> int | None:
    """The new order, its placing decision and its first event: one statement, the order's
    id for the other two from the first. Returns that id (also set on the three).

    `unless_duplicate`: only if the customer has no active order of this service for this
    link (their row locked before, so no other placement of theirs runs meanwhile); None,
    inserting nothing, when they have one."""
    order_columns, order_values, order_params = insert_parts(order, cast=True)
    decision_columns, decision_values, decision_params = insert_parts(decision, skip=("order_id",), cast=True)
    event_columns, event_values, event_params = insert_parts(event, skip=("order_id",), cast=True)
    check, check_params = "", []
    if unless_duplicate:
        check = (
            " WHERE NOT EXISTS (SELECT 1 FROM orders_order WHERE user_id = %s::bigint AND service_id = %s::bigint "  # noqa: S608
            f"AND status IN ({_ACTIVE_SQL}) AND link = %s::text)"
        )
        check_params = [order.user_id, order.service_id, order.link]
    with hot_cursor() as cursor:
        cursor.execute(
            # Column names come from the models, values are parameters.
            f"WITH o AS (INSERT INTO orders_order ({order_columns}) SELECT {order_values}{check} RETURNING id), "  # noqa: S608
            f"d AS (INSERT INTO orders_routingdecision (order_id, {decision_columns}) "
            f"SELECT o.id, {decision_values} FROM o) "
            f"INSERT INTO orders_orderevent (order_id, {event_columns}) "
            f"SELECT o.id, {event_values} FROM o RETURNING order_id",
            [*order_params, *check_params, *decision_params, *event_params],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    order.pk = decision.order_id = event.order_id = row[0]
    order._state.adding = False
    return int(row[0])
