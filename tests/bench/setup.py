"""Django for a benchmark run: a dedicated PostgreSQL database, migrated.

BENCH_DATABASE_URL picks the database (default: a `bench` database on the local server).
"""

from __future__ import annotations

import os

from devtools.db import database_create

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench"


def setup_django(*, fresh: bool = True) -> None:
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if url.startswith("postgres"):
        database_create(url, fresh=fresh)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smmpanel.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
