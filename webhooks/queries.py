"""The delivery path's SQL, written out: a delivery makes these few statements, and building
them through the ORM's compiler cost more Python than everything else a delivery does
(profiled: about half of 8.5 ms of CPU per delivery). Column names come from the models;
every value is a parameter, prepared by its field for the database in use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection, models

from kernel.db import fetch_joined

from .models import Endpoint, Event, EventState

EVENT = Event._meta.db_table
ENDPOINT = Endpoint._meta.db_table


def _prep(model: type[models.Model], name: str, value: Any) -> Any:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.get_db_prep_value(value, connection, prepared=False)


def event_claim(*, event_pk: int, now: datetime, lease_until: datetime) -> bool:
    """Lease the event for one attempt if it may be sent now: pending, due, not leased, its
    endpoint enabled, and no earlier event of its order pending for the endpoint.

    The conditions on the row's own columns are at the top of the UPDATE's WHERE, which
    PostgreSQL re-checks against the row a concurrent claim just wrote: of two workers holding
    the same message, one wins. (The ORM turns a filter across a join into `id IN (SELECT
    ...)`, which is read from the old snapshot, and both would win.)"""
    stamp = _prep(Event, "lease_until", now)
    sql = (
        f"UPDATE {EVENT} SET lease_until = %s, attempts = attempts + 1 "  # noqa: S608 - table names from the models
        f"WHERE id = %s AND state = %s AND next_attempt_at <= %s AND (lease_until IS NULL OR lease_until < %s) "
        f"AND EXISTS (SELECT 1 FROM {ENDPOINT} p WHERE p.id = {EVENT}.endpoint_id AND p.is_enabled) "
        f"AND NOT EXISTS (SELECT 1 FROM {EVENT} x WHERE x.endpoint_id = {EVENT}.endpoint_id "
        f"AND x.order_ref = {EVENT}.order_ref AND x.state = %s AND x.id < {EVENT}.id)"
    )
    params = [_prep(Event, "lease_until", lease_until), event_pk, EventState.PENDING, stamp, stamp, EventState.PENDING]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return bool(cursor.rowcount == 1)


def event_with_endpoint(*, event_pk: int) -> Event:
    """The event with its endpoint (one query; on PostgreSQL written out)."""
    if connection.vendor != "postgresql":
        return Event.objects.select_related("endpoint").get(pk=event_pk)
    ((event, endpoint),) = fetch_joined(
        [(Event, "e"), (Endpoint, "p")],
        f"FROM {EVENT} e JOIN {ENDPOINT} p ON p.id = e.endpoint_id WHERE e.id = %s",
        [event_pk],
    )
    assert isinstance(event, Event) and isinstance(endpoint, Endpoint)
    event.endpoint = endpoint
    return event


def event_settle(*, event_pk: int, lease_until: datetime, values: Mapping[str, Any]) -> bool:
    """Write an attempt's outcome, only while this attempt still holds the lease (pending,
    with the lease it claimed). True when written."""
    # Every name is an Event field whose column is its name (the values come from event_deliver).
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in values)
    params = [_prep(Event, name, value) for name, value in values.items()]
    sql = f"UPDATE {EVENT} SET {assignments} WHERE id = %s AND state = %s AND lease_until = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, event_pk, EventState.PENDING, _prep(Event, "lease_until", lease_until)])
        return bool(cursor.rowcount == 1)


def order_next_pending(*, endpoint_id: int, order_ref: int, after: int) -> int | None:
    """The id of the order's next pending event for the endpoint, after `after`."""
    sql = (
        f"SELECT id FROM {EVENT} WHERE endpoint_id = %s AND order_ref = %s AND state = %s AND id > %s "  # noqa: S608
        "ORDER BY id LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [endpoint_id, order_ref, EventState.PENDING, after])
        row = cursor.fetchone()
    return int(row[0]) if row else None
