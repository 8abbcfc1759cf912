"""smmpanel.celery: workers keep their database connections across tasks, aged like the web's."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.db import connection

from smmpanel.celery import _close_old_connections, app


def _task(*, eager: bool) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celery_does_not_close_connections_after_every_task():
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 10**9


@pytest.mark.django_db
def test_an_eager_task_leaves_the_callers_connection_alone():
    connection.ensure_connection()
    before = connection.connection
    _close_old_connections(sender=_task(eager=True))
    assert connection.connection is before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_reuses_a_connection_until_it_is_too_old():
    # A new connection: one an earlier test opened may already be past CONN_MAX_AGE.
    connection.close()
    connection.ensure_connection()
    before = connection.connection
    _close_old_connections(sender=_task(eager=False))
    assert connection.connection is before
    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    _close_old_connections(sender=_task(eager=False))
    assert connection.connection is None
