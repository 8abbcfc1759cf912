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
