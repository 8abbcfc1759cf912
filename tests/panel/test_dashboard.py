from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from panel import dashboard
from support import services as support_services
from tests.factories import ProviderFactory, ServiceFactory
from tests.support.conftest import make_order
from wallets.models import Payment
from wallets.services import wallet_credit

pytestmark = pytest.mark.django_db

HOSTILE = "<script>window.__x=1</script>"


def _backdate(order: Order, days: int) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - dt.timedelta(days=days))


def _refund(order: Order, amount: str) -> None:
    wallet_credit(
        user=order.user, amount=D(amount), kind="refund", idempotency_key=f"order:{order.pk}:refund", order_ref=order.pk
    )


@pytest.fixture
def busy_panel(customer: Any) -> dict[str, Any]:
    old = make_order(customer, state="sent", status="Completed", charge=D("5"), cost=D("4"))
    _backdate(old, 45)  # outside the 30 days
    week = make_order(customer, state="sent", status="Completed", charge=D("2"), cost=D("1.5"))
    _backdate(week, 3)
    make_order(customer, state="sent", status="Completed", charge=D("1.30000"), cost=D("1.00000"))
    partial = make_order(
        customer, state="sent", status="Partial", quantity=1000, remains=400, charge=D("1"), cost=D("0.8")
    )
    _refund(partial, "0.4")
    canceled = make_order(customer, state="rejected", status="Canceled", charge=D("3"), cost=D("2"))
    _refund(canceled, "3")
    make_order(customer, state="unknown", charge=D("0.5"), cost=D("0.25"))
    return {"week": week}


def test_stats_sum_charges_net_of_refunds_with_upstream_cost(busy_panel: dict[str, Any]) -> None:
    stats = dashboard.dashboard_stats()
    # today: 1.3 + 1 + 3 + 0.5 charged, 0.4 + 3 refunded
    assert stats.today.orders == 4
    assert stats.today.revenue == D("2.4")
    # cost: 1.0 completed, 0.8 * 600/1000 partial, 0 never bought, 0.25 unknown (maybe bought)
    assert stats.today.cost == D("1.73")
    assert stats.today.profit == D("0.67")
    assert stats.period.orders == 5
    assert stats.period.revenue == D("4.4")
    assert stats.period.cost == D("3.23")
    assert len(stats.days) == 30 and stats.days[-1].day == timezone.localdate()
    three_days_ago = [p for p in stats.days if p.day == timezone.localdate() - dt.timedelta(days=3)]
    assert three_days_ago[0].revenue == D("2")


def test_finished_days_come_from_the_refreshed_summary_and_today_is_live(
    customer: Any, busy_panel: dict[str, Any], django_assert_num_queries: Any
) -> None:
    before = dashboard.dashboard_stats()
    # A late order of three days ago (and a late refund of one) waits for the next refresh;
    # an order placed today shows at once.
    late = make_order(customer, state="sent", status="Completed", charge=D("7"), cost=D("1"))
    _backdate(late, 3)
    _refund(busy_panel["week"], "0.5")
    make_order(customer, state="sent", status="Completed", charge=D("0.25"), cost=D("0.1"))
    stats = dashboard.dashboard_stats()
    assert stats.today.orders == before.today.orders + 1
    assert stats.today.revenue == before.today.revenue + D("0.25")
    assert stats.period.orders == before.period.orders + 1
    three = timezone.localdate() - dt.timedelta(days=3)
    assert [p.revenue for p in stats.days if p.day == three] == [D("2")]
    # Only today's orders and refunds are read on a view.
    with django_assert_num_queries(2) as captured:
        dashboard.dashboard_stats()
    today_start = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))
    orders_sql = captured[0]["sql"]
    assert f'"created_at" >= \'{today_start:%Y-%m-%d %H:%M:%S}' in orders_sql and '"created_at" <' not in orders_sql

    dashboard.dashboard_refresh()
    after = dashboard.dashboard_stats()
    assert [p.revenue for p in after.days if p.day == three] == [D("2") + D("7") - D("0.5")]
    assert [p.orders for p in after.days if p.day == three] == [2]
    assert after.period.orders == before.period.orders + 2
    assert after.period.cost == before.period.cost + D("1") + D("0.1")


def test_attention_lists_what_needs_a_person(customer: Any) -> None:
    make_order(customer, state="unknown")
    make_order(customer, state="rejected", status="Canceled", customer_note=HOSTILE)
    ServiceFactory(held_price=D("9.000000"))
    Payment.objects.create(user=customer, gateway="manual", amount=D("5"), currency="USD", status="failed")
    Payment.objects.create(user=customer, gateway="manual", amount=D("5"), currency="USD", status="paid")
    ProviderFactory(name="paused one", paused_reason="not enough funds")
    ProviderFactory(name="poor one", balance=D("3"), low_balance_alert=D("10"))
    ProviderFactory(name="rich one", balance=D("300"), low_balance_alert=D("10"))
    ProviderFactory(name="disabled", is_enabled=False, paused_reason="x")
    support_services.ticket_open(user=customer, subject="Help", kind="other", body="x")
    Payment.objects.create(user=customer, gateway="manual", amount=D("120"), currency="USD", status="pending")
    make_order(customer, state="sent", margin_flag=True)
    counts = {item.key: item.count for item in dashboard.dashboard_attention()}
    assert counts == {
        "transfers": 1,
        "unknown": 1,
        "unknown_refills": 0,
        "unknown_cancels": 0,
        "margin": 1,
        "rejected": 1,
        "held_prices": 1,
        "failed_payments": 1,
        "owing": 0,
        "tickets": 1,
        "providers_paused": 1,
        "providers_low": 1,
    }


def test_admin_index_shows_the_dashboard_escaped_and_in_bounded_queries(
    customer: Any, staff: Any, settings: Any, busy_panel: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    settings.STAFF_REQUIRE_MFA = False
    make_order(customer, state="rejected", status="Canceled", customer_note=HOSTILE)
    client = Client()
    client.force_login(staff)
    client.get(reverse("admin:index"))  # the panel configuration is read into the cache once
    with django_assert_max_num_queries(30):
        response = client.get(reverse("admin:index"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="needs-attention"' in body and 'id="revenue-chart"' in body and "<rect" in body
    assert "window.__x" not in body.replace("&lt;script&gt;window.__x=1&lt;/script&gt;", "")
    assert "state__exact=unknown" in body


def test_chart_bars_scale_to_the_best_day() -> None:
    days = [
        dashboard.DayPoint(dt.date(2030, 1, 1), 1, D("10"), D("5"), D("5")),
        dashboard.DayPoint(dt.date(2030, 1, 2), 0, D("0"), D("0"), D("0")),
        dashboard.DayPoint(dt.date(2030, 1, 3), 1, D("-2"), D("0"), D("-2")),
    ]
    bars, top = dashboard.chart_bars(days=days, width=300, height=100)
    assert top == D("10")
    assert bars[0].revenue_h == 100 and bars[0].profit_h == 50
    assert bars[1].revenue_h == 0 and bars[2].revenue_h == 0
