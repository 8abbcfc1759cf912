"""kernel.db: the admin paginator for tables of millions of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from kernel.db import EstimatedCountPaginator
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def users() -> list[User]:
    return [UserFactory(username=f"p{n}", email=f"p{n}@example.com") for n in range(7)]


def test_pages_hold_the_rows_in_the_queryset_order(users):
    paginator = EstimatedCountPaginator(User.objects.order_by("-id"), 3)
    assert paginator.count == 7
    assert paginator.num_pages == 3
    newest_first = sorted(users, key=lambda u: -u.pk)
    assert list(paginator.page(1).object_list) == newest_first[:3]
    assert list(paginator.page(3).object_list) == newest_first[6:]


def test_a_page_past_the_end_is_empty_and_junk_is_refused(users):
    paginator = EstimatedCountPaginator(User.objects.order_by("id"), 3)
    assert list(paginator.page(9).object_list) == []
    with pytest.raises(Exception):  # noqa: B017 - EmptyPage or PageNotAnInteger
        paginator.page(0)
    with pytest.raises(Exception):  # noqa: B017
        paginator.page("x")


def test_large_results_are_estimated_not_counted(users, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_COUNT_LIMIT", 3)
    paginator = EstimatedCountPaginator(User.objects.order_by("id"), 2)
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "LIMIT 4" in sql  # never more than the limit (+1) rows are counted
    if connection.vendor == "postgresql":
        assert "EXPLAIN" in sql
        assert count >= 4
    else:
        assert count == 7  # elsewhere, an exact count


# --- field__any: a list of ids as one parameter ---------------------------------------------------
def test_any_finds_exactly_the_listed_rows(users):
    wanted = [users[1].pk, users[4].pk, users[4].pk, 10**12]  # a repeat and an id that does not exist
    found = set(User.objects.filter(pk__any=wanted).values_list("pk", flat=True))
    assert found == {users[1].pk, users[4].pk}
    assert not User.objects.filter(pk__any=[]).exists()
    assert set(User.objects.exclude(pk__any=[users[0].pk]).values_list("pk", flat=True)) == {u.pk for u in users[1:]}


@pytest.mark.postgres
def test_any_sends_one_statement_text_whatever_the_number_of_ids(users):
    with CaptureQueriesContext(connection) as captured:
        list(User.objects.filter(pk__any=[users[0].pk]))
        list(User.objects.filter(pk__any=[u.pk for u in users]))
    texts = [q["sql"] for q in captured.captured_queries]
    assert "= ANY(" in texts[0]
    # The SQL differs only in the array literal Django interpolates for display.
    assert texts[0].split("ANY(")[0] == texts[1].split("ANY(")[0]


def test_first_or_none_reads_one_row_without_ordering(users):
    from kernel.db import first_or_none

    with CaptureQueriesContext(connection) as captured:
        assert first_or_none(User.objects.filter(pk=users[2].pk)) == users[2]
        assert first_or_none(User.objects.filter(pk=10**12)) is None
    assert all("ORDER BY" not in q["sql"] and "LIMIT 1" in q["sql"] for q in captured.captured_queries)


# --- hot_cursor: the API's fixed statements, prepared once per connection ---------------------------
def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_the_status_rows_statement_is_prepared_once_and_logged(users):
    from orders.queries import status_rows

    before = [s for s in _prepared_statements() if "FROM orders_order" in s]
    with CaptureQueriesContext(connection) as queries:
        assert status_rows(user_id=users[0].pk, pks=[1, 2, 3]) == []
        assert status_rows(user_id=users[1].pk, pks=list(range(100))) == []
    after = [s for s in _prepared_statements() if "FROM orders_order" in s and "ANY($2" in s]
    assert len(after) == 1, after  # the same statement, prepared once for both calls
    assert before == [] or after[0] in before  # a connection reused from an earlier test may hold it
    assert len(queries.captured_queries) == 2  # still seen by Django's query log (tests, debug toolbar)


@pytest.mark.postgres
def test_preparing_can_be_switched_off(users):
    from kernel.db import hot_cursor

    raw = connection.connection
    saved = raw.prepare_threshold
    raw.prepare_threshold = None  # what DATABASE_PREPARED_STATEMENTS=false sets on every connection
    try:
        with hot_cursor() as cursor:
            cursor.execute("SELECT %s::bigint + 41 -- unprepared", [1])
            assert cursor.fetchone() == (42,)
        assert not [s for s in _prepared_statements() if "unprepared" in s]
    finally:
        raw.prepare_threshold = saved
    with hot_cursor() as cursor:
        cursor.execute("SELECT %s::bigint + 41 -- prepared", [1])
        assert cursor.fetchone() == (42,)
    assert [s for s in _prepared_statements() if "prepared" in s and "unprepared" not in s]


@pytest.mark.postgres
def test_a_failing_statement_raises_djangos_error_and_leaves_the_connection_usable(users):
    from django.db import DatabaseError, transaction

    from kernel.db import hot_cursor

    with pytest.raises(DatabaseError), transaction.atomic(), hot_cursor() as cursor:
        cursor.execute("SELECT 1 / %s::int", [0])
    with hot_cursor() as cursor:
        cursor.execute("SELECT %s::int", [7])
        assert cursor.fetchone() == (7,)


# --- insert_parts: a model instance as an INSERT's columns and values ------------------------------
@pytest.mark.postgres
def test_insert_parts_write_what_save_writes_and_refuse_an_overlong_text(users):
    from decimal import Decimal

    from django.db import DataError, transaction

    from kernel.db import hot_cursor, insert_parts
    from wallets.models import Entry

    def entry(memo: str) -> Entry:
        return Entry(user=users[0], amount=Decimal("1.5"), kind="deposit", idempotency_key=memo[:20], memo=memo)

    columns, values, params = insert_parts(entry("by hand"), cast=True, skip=("balance_after",))
    assert "NULL::bigint" in values  # payment and actor are written as NULL, not sent
    assert len(params) == values.count("%s")
    with hot_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO wallets_entry ({columns}, balance_after) SELECT {values}, 7 RETURNING id",
            params,
        )
        (pk,) = cursor.fetchone()
    saved = entry("by save")
    saved.balance_after = Decimal(7)
    saved.save()
    by_hand = Entry.objects.values().get(pk=pk)
    by_save = Entry.objects.values().get(pk=saved.pk)
    for row in (by_hand, by_save):
        del row["id"], row["created_at"], row["idempotency_key"], row["memo"]
    assert by_hand == by_save
    # The cast is to text, not to the column's varchar(255): too long is an error, never cut.
    columns, values, params = insert_parts(entry("x" * 256), cast=True, skip=("balance_after",))
    with pytest.raises(DataError), transaction.atomic(), hot_cursor() as cursor:
        cursor.execute(f"INSERT INTO wallets_entry ({columns}, balance_after) SELECT {values}, 7", params)
