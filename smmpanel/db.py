"""Database helpers that Django does not offer fast enough."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


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
