"""Database helpers that Django does not offer fast enough."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connection, connections, models
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models.lookups import IExact

from .numbers import int_or_none


def bulk_update_fast(objs: Sequence[models.Model], fields: Sequence[str], *, batch_size: int = 1000) -> int:
    """Like QuerySet.bulk_update, but on PostgreSQL one `UPDATE … FROM (VALUES …)` per batch.

    Django's bulk_update builds a CASE expression per field per row, which costs seconds
    of Python for a few thousand rows (a provider sync touches that many).
    """
    if not objs:
        return 0
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_update(objs, list(fields), batch_size=batch_size)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    cols = [meta.get_field(name) for name in fields]
    concrete = [f for f in cols if isinstance(f, models.Field)]
    casts = [f"CAST(%s AS {pk.db_type(connection)})"] + [f"CAST(%s AS {f.db_type(connection)})" for f in concrete]
    row_sql = "(" + ", ".join(casts) + ")"
    names = ["pk_"] + [f"c{i}" for i in range(len(concrete))]
    set_sql = ", ".join(f'"{f.column}" = v.c{i}' for i, f in enumerate(concrete))
    table = meta.db_table
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            batch = objs[start : start + batch_size]
            params: list[Any] = []
            for obj in batch:
                params.append(pk.get_db_prep_save(obj.pk, connection))
                for f in concrete:
                    params.append(f.get_db_prep_save(getattr(obj, f.attname), connection))
            values = ", ".join([row_sql] * len(batch))
            cursor.execute(
                f'UPDATE "{table}" AS t SET {set_sql} FROM (VALUES {values}) AS v({", ".join(names)}) '  # noqa: S608 - names come from model metadata
                f'WHERE t."{pk.column}" = v.pk_',
                params,
            )
            updated += cursor.rowcount
    return updated


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]  # not subscriptable at run time
    """A paginator for admin lists over tables of millions of rows.

    - It never counts more than EXACT_COUNT_LIMIT rows: beyond that, the count is
      PostgreSQL's planner estimate (shown as the number of results and pages), so opening
      the list does not scan the whole table.
    - A page reads its ids first (an index-only scan, however deep the page) and then only
      those rows with their joined columns, instead of joining every skipped row.
    - A page number past an estimated end is an empty page rather than an error.
    """

    EXACT_COUNT_LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, models.QuerySet):
            return len(queryset)
        ids = queryset.order_by().values("pk")
        capped = ids[: self.EXACT_COUNT_LIMIT + 1].count()
        db = connections[queryset.db]
        if capped <= self.EXACT_COUNT_LIMIT or db.vendor != "postgresql":
            return capped if capped <= self.EXACT_COUNT_LIMIT else queryset.count()
        sql, params = ids.query.sql_with_params()
        with db.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return max(capped, int(plan[0]["Plan"]["Plan Rows"]))

    def validate_number(self, number: Any) -> int:
        try:
            return super().validate_number(number)
        except EmptyPage:
            # Past an estimated end: an empty page, as the rows it would hold do not exist.
            page = int_or_none(number, min=1)
            if page is None:
                raise
            return page

    def page(self, number: Any) -> Page[Any]:
        number = self.validate_number(number)
        queryset = self.object_list
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not isinstance(queryset, models.QuerySet):
            return Page(queryset[bottom:top], number, self)
        ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in queryset.filter(pk__in=ids)} if ids else {}
        return Page([rows[pk] for pk in ids if pk in rows], number, self)


class AnyOf(models.Lookup):  # type: ignore[type-arg]
    """`field__any=[...]`: on PostgreSQL `field = ANY(%s)` with the list as one array
    parameter, elsewhere an ordinary IN. A status request names up to 100 orders: as IN,
    Django prepares 100 parameters and the driver re-parses a new statement text each time;
    as ANY, the statement is one text whatever the number of ids."""

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[int]:
        return [int(value) for value in self.rhs]

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


_Row = TypeVar("_Row")


def first_or_none(queryset: models.QuerySet[Any, _Row]) -> _Row | None:
    """The row of a lookup that matches at most one (a primary or unique key), or None.

    QuerySet.first() orders an unordered queryset by the primary key, and compiling that
    ORDER BY costs a few hundred microseconds of Python on every call: this is `LIMIT 1`
    alone. Use it only where at most one row can match."""
    return next(iter(queryset[:1]), None)


class WholeNumberIExact(IExact):  # type: ignore[type-arg]  # not subscriptable at run time
    """`field__iexact` on an integer column, which is what `=id` in an admin's search_fields
    becomes. Django compares it as text (`UPPER(id::text) = UPPER('40')`), a scan of the whole
    table that no index serves. Here the term is read with the one number parser: a number is
    an indexed `= n`, anything else (`²`, `١`, `1_0`, a word) matches no row."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        if hasattr(self.rhs, "resolve_expression"):
            sql, params = super().as_sql(compiler, connection)
            return sql, list(params)
        number = int_or_none(self.rhs)
        if number is None:
            return "1 = 0", []
        # Lookup's own process_lhs: IExact's would wrap the column in UPPER(...::text).
        lhs, lhs_params = models.Lookup.process_lhs(self, compiler, connection)
        return f"{lhs} = %s", [*lhs_params, number]


def written_out() -> bool:
    """Whether the hot paths take their statements written out for PostgreSQL (placing,
    the charge of an order) rather than the ORM's, which SQLite takes. The tests switch
    it off to run the ORM's path on PostgreSQL as well."""
    return connection.vendor == "postgresql"


# --- Prepared statements for the hottest lookups ----------------------------------------
@contextmanager
def hot_cursor() -> Iterator[Any]:
    """A cursor for the few fixed statements every API request makes.

    Django's cursors bind parameters on the client (psycopg's ClientCursor): PostgreSQL
    parses and plans each statement anew, which for `status` of 100 ids (an array literal
    of 100 numbers, each one estimated by the planner) costs more than running it. This one
    binds on the server, so psycopg prepares the statement on its first use on a connection
    (settings: `prepare_threshold`, switched off by DATABASE_PREPARED_STATEMENTS=false for a
    pooler that cannot keep prepared statements) and PostgreSQL plans it once. On other
    databases it is Django's own cursor. Errors, query logging and the thread check are
    Django's, as for its own cursors.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    connection.validate_thread_sharing()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    wrapped = _ServerBoundDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        yield cursor


class _ServerBoundDebugWrapper(CursorDebugWrapper):
    """Django's query log (DEBUG, the tests' query counts) reads the statement back off a
    client-binding cursor and finds nothing on this one: it logs the statement with its
    values put in by psycopg instead."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


@lru_cache(maxsize=32)
def _insert_columns(model: type[models.Model], skip: tuple[str, ...]) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in skip)
    return ", ".join(connection.ops.quote_name(f.column) for f in fields), fields


def _cast(field: models.Field[Any, Any]) -> str:
    """The type a placeholder is cast to where no target column types it (`INSERT … SELECT`):
    text and numeric without their length and scale, so the assignment to the column still
    refuses an overlong string (an explicit cast to varchar(n) would cut it) and rounds a
    decimal as a plain INSERT does."""
    if isinstance(field, models.CharField | models.TextField):
        return "%s::text"
    if isinstance(field, models.DecimalField):
        return "%s::numeric"
    return f"%s::{field.cast_db_type(connection)}"  # type: ignore[attr-defined]  # not in the stubs


@lru_cache(maxsize=32)
def _placeholders(model: type[models.Model], skip: tuple[str, ...], cast: bool) -> tuple[tuple[str, str], ...]:
    """Each column's placeholder and its NULL, cast or not."""
    _columns, fields = _insert_columns(model, skip)
    if not cast:
        return tuple(("%s", "NULL") for _ in fields)
    return tuple((_cast(f), _cast(f).replace("%s", "NULL")) for f in fields)


def insert_parts(obj: models.Model, *, skip: tuple[str, ...] = (), cast: bool = False) -> tuple[str, str, list[Any]]:
    """An unsaved instance as `INSERT INTO table (<columns>) VALUES (<placeholders>)` would
    take it, the way Model.save() prepares it (defaults from the model, `auto_now` fields
    set, values adapted for this database): (the quoted columns, the placeholders, the
    values). The primary key is left to the database; `skip` leaves out other attnames,
    which the caller writes itself (a foreign key to a row inserted in the same statement).
    `cast` types each placeholder, for `INSERT … SELECT <placeholders> FROM …`.

    A NULL is written as such, not sent: fewer parameters (psycopg keeps the parsed form
    of a statement of up to 50), and a handful of statement texts, one per pattern of
    empty columns, each prepared once."""
    columns, fields = _insert_columns(type(obj), skip)
    marks, params = [], []
    for field, (placeholder, null) in zip(fields, _placeholders(type(obj), skip, cast), strict=True):
        value = field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        if value is None:
            marks.append(null)
        else:
            marks.append(placeholder)
            params.append(value)
    return columns, ", ".join(marks), params


# --- Hot lookups without the ORM's compiler -----------------------------------------------
# Compiling a queryset with select_related costs more Python than the query costs PostgreSQL
# (about 1 ms for a service with its category, route, upstream service and provider). The few
# lookups every API request makes are written as SQL once and read into model instances here.
_Joined = tuple[type[models.Model], str]


@lru_cache(maxsize=64)
def _select_list(model: type[models.Model], alias: str) -> tuple[str, tuple[Any, ...]]:
    """Every concrete column of `model` under `alias`, and each field with its converters."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(f"{quote(alias)}.{quote(field.column)}" for field in fields)
    # The backend's converters, then the field's, as Django's compiler applies them (SQLite's
    # turn its decimals, datetimes and booleans into Python's types; PostgreSQL has none).
    converters = tuple(
        (
            field,
            tuple(connection.ops.get_db_converters(field.cached_col) + field.get_db_converters(connection)),  # type: ignore[attr-defined]
        )
        for field in fields
    )
    return columns, converters


def _instance(model: type[models.Model], alias: str, row: Sequence[Any], start: int) -> tuple[models.Model, int]:
    _columns, fields = _select_list(model, alias)
    values = list(row[start : start + len(fields)])
    for i, (field, converters) in enumerate(fields):
        for convert in converters:
            values[i] = convert(values[i], field.cached_col, connection)
    instance = model.from_db(connection.alias, None, values)  # type: ignore[arg-type]  # every field, in order
    return instance, start + len(fields)


def fetch_joined(joined: Sequence[_Joined], sql_from: str, params: Sequence[Any]) -> list[list[models.Model]]:
    """`SELECT <every column of each (model, alias)> <sql_from>`: each row as one instance of
    each model, in order. The caller links them (`route.service = service`)."""
    select = ", ".join(_select_list(model, alias)[0] for model, alias in joined)
    with hot_cursor() as cursor:
        cursor.execute(f"SELECT {select} {sql_from}", params)  # column names come from the models
        rows = cursor.fetchall()
    result = []
    for row in rows:
        instances, start = [], 0
        for model, alias in joined:
            instance, start = _instance(model, alias, row, start)
            instances.append(instance)
        result.append(instances)
    return result
