"""smmpanel.db: the admin paginator for tables of millions of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from smmpanel.db import EstimatedCountPaginator
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
