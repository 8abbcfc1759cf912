"""A PostgreSQL database of its own for a run (chaos, bench), made fresh and dropped after."""

from __future__ import annotations

from urllib.parse import urlsplit


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    # The name goes into DDL unquoted by the driver: accept only plain names.
    if not name or not name.replace("_", "").isalnum():
        raise RuntimeError(f"unexpected database name {name!r}")
    return name


def admin_url(url: str) -> str:
    """The same server's `postgres` database, for CREATE and DROP DATABASE."""
    return urlsplit(url)._replace(scheme="postgresql", path="/postgres").geturl()


def database_create(url: str, *, fresh: bool = True) -> None:
    """Create the database of `url`; `fresh` drops it first (connections and all)."""
    import psycopg

    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
