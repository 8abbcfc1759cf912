"""Shared fixtures: personas, and the rules for tests that need real services.

Tests marked `postgres`, `broker` or `e2e` need a real server. Outside CI they are skipped
when it is missing; with CI=true a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from simulators.provider import Simulator
from tests.factories import UserFactory

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


@pytest.fixture(autouse=True)
def _real_service_markers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres"):
        _require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
    if request.node.get_closest_marker("broker"):
        _require(
            settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")),
            "needs a Redis or RabbitMQ broker (set CELERY_BROKER_URL)",
        )
    if request.node.get_closest_marker("e2e"):
        _require(shutil.which("chromium") is not None, "needs Debian's chromium")


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Every test starts with an empty cache: rate-limit counters (logins, sign-ups, the API)
    and once-an-hour alert markers of one test, or of an earlier run on the same Redis, must
    not decide another."""
    from django.core.cache import cache

    from siteconf.selectors import site_settings_forget_local

    cache.clear()
    # The panel configuration this thread read in an earlier test (its row was rolled back).
    site_settings_forget_local()
    yield


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete() -> Iterator[None]:
    """After each transactional test (django_db(transaction=True), live_server) Django empties
    every table with one TRUNCATE of all of them; on PostgreSQL that replaces each table's files
    and takes about a second. DELETE FROM each table in one transaction empties the same tables
    in a fraction of that (the foreign keys are deferred, so the order does not matter)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences or allow_cascade:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED;", *(f"DELETE FROM {self.quote_name(table)};" for table in tables)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "sql_flush", sql_flush)
        yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def customer(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="customer", email="customer@example.com")


@pytest.fixture
def other_customer(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="other", email="other@example.com")


@pytest.fixture
def staff(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="staff", email="staff@example.com", is_staff=True, is_superuser=True)


# --- The provider simulator -------------------------------------------------------------------
# `simulator` is manual and unsurprising: orders move only when a test calls
# `simulator.advance_all()` (or `simulator.set_speed(0.05)`), and every order ends Completed
# unless the test forces another outcome (`force_status`, `set_outcome`, `set_outcomes`).
# `make_simulator(**options)` starts one with other options (dialect=True, services=5000, ...).
MANUAL = {"speed": None, "partial": 0.0, "canceled": 0.0, "refill_rejected": 0.0}


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(**options: Any) -> Simulator:
        sim = Simulator(**{**MANUAL, **options}).start(host="127.0.0.1", port=0)
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    return make_simulator()


@pytest.fixture
def site_conf(db):  # type: ignore[no-untyped-def]
    """Change the panel configuration (siteconf) for a test: site_conf(panel_name="X")."""
    from siteconf.services import site_settings_update

    def change(**changes):  # type: ignore[no-untyped-def]
        return site_settings_update(actor=None, **changes)

    return change
