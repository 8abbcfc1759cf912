"""Ordering that helps: links completed to https://, errors at their field, a warning with an
Add-funds link when the balance is short, a first-visit hint, reorder, and order detail
with the refund, drip-feed progress and refill window."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, State, Status
from orders.presenting import order_facts
from orders.services import link_complete
from tests.orders.factories import fund, ledger, order_booked, order_finished

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(shop):
    return shop.service(price="2.000000", refill=True, dripfeed=True)


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("instagram.com/reel/x", "https://instagram.com/reel/x"),
        ("  www.tiktok.com/@maria ", "https://www.tiktok.com/@maria"),
        ("t.me/channel", "https://t.me/channel"),
        ("http://example.com/a", "http://example.com/a"),
        ("javascript:alert(1)", "javascript:alert(1)"),  # left for the link check to refuse
        ("not a link", "not a link"),
        ("localhost/x", "localhost/x"),
    ],
)
def test_link_complete_adds_https_only_to_host_names(typed, sent):
    assert link_complete(typed) == sent


def test_a_scheme_less_link_is_completed_on_the_new_order_page(client, customer, service, queue):
    fund(customer, "10")
    client.force_login(customer)
    form = {"service": service.pk, "link": "instagram.com/reel/x", "quantity": "100", "token": "t"}
    response = client.post(reverse("orders:new"), form)
    order = Order.objects.get(user=customer)
    assert response.status_code == 302 and order.link == "https://instagram.com/reel/x"


def test_a_scheme_less_link_is_completed_in_a_mass_order(client, customer, service, queue):
    fund(customer, "10")
    client.force_login(customer)
    client.post(reverse("orders:mass"), {"orders": f"{service.pk}|instagram.com/p/abc|100", "token": "m"})
    assert Order.objects.get(user=customer).link == "https://instagram.com/p/abc"


def test_the_api_keeps_the_protocols_incorrect_link(customer, service, place):
    # API_V2: a link is a URL; the API answers "Incorrect link" as every panel does.
    from orders.services import OrderError

    fund(customer, "10")
    with pytest.raises(OrderError, match="Incorrect link"):
        place(customer, service, link="instagram.com/reel/x", quantity="100")


def test_errors_are_shown_next_to_their_field(client, customer, service):
    fund(customer, "10")
    client.force_login(customer)
    form = {"service": service.pk, "link": "not a link", "quantity": "100", "token": "t"}
    html = client.post(reverse("orders:new"), form).content.decode()
    assert 'data-error-for="link">Incorrect link<' in html and 'id="order-error"' not in html
    form.update(link="https://instagram.com/p/1", quantity="1")
    html = client.post(reverse("orders:new"), form).content.decode()
    assert 'data-error-for="quantity">Quantity less than minimal 10<' in html
    assert 'aria-invalid="true"' in html


def test_a_charge_above_the_balance_is_refused_with_an_add_funds_link(client, customer, service):
    fund(customer, "0.10")
    before = ledger(customer)
    client.force_login(customer)
    form = {"service": service.pk, "link": "https://instagram.com/p/1", "quantity": "1000", "token": "t"}
    html = client.post(reverse("orders:new"), form).content.decode()
    assert "Not enough funds on balance" in html
    warning = html[html.index('id="funds-warning"') - 60 : html.index('id="funds-warning"') + 400]
    assert "d-none" not in warning and reverse("wallets:add_funds") in warning
    assert ledger(customer) == before and not Order.objects.exists()
    # The page carries what the script needs to warn before submitting.
    assert 'data-balance="0.10000"' in html


def test_a_new_customer_without_money_is_shown_where_to_add_funds(client, customer, service, place):
    client.force_login(customer)
    assert 'id="first-visit"' in client.get(reverse("orders:new")).content.decode()
    fund(customer, "5")
    assert 'id="first-visit"' not in client.get(reverse("orders:new")).content.decode()


def test_subscription_form_is_valid_with_its_own_defaults(client, customer, shop, queue):
    fund(customer, "100")
    subscription = shop.service(type="Subscriptions", price="1.000000", min=10, max=1000)
    client.force_login(customer)
    page = client.get(reverse("orders:new") + f"?service={subscription.pk}").content.decode()
    assert '<option value="0" selected>0</option>' in page  # the first delay is chosen
    # What the page submits as it comes (the script fills min and max with the minimum).
    form = {"service": subscription.pk, "username": "maria", "min": "10", "max": "10", "delay": "0", "token": "s"}
    response = client.post(reverse("orders:new"), form)
    assert response.status_code == 302, response.content.decode()[:3000]


def test_reorder_prefills_the_new_order_page_and_is_mine_only(client, customer, other_customer, service):
    fund(customer, "100")
    order = order_booked(customer, service, charge="10.00000", quantity=5000)
    Order.objects.filter(pk=order.pk).update(link="https://instagram.com/p/1", runs=5, interval=30)
    client.force_login(customer)
    html = client.get(reverse("orders:new") + f"?reorder={order.pk}").content.decode()
    assert f'<option value="{service.pk}" selected>' in html
    assert 'value="https://instagram.com/p/1"' in html
    assert 'name="quantity" value="1000"' in html and 'name="runs" value="5"' in html
    client.force_login(other_customer)
    assert client.get(reverse("orders:new") + f"?reorder={order.pk}").status_code == 404


def test_order_detail_shows_refund_progress_refill_window_and_reorder(client, customer, service):
    fund(customer, "100")
    order = order_booked(customer, service, charge="2.00000", quantity=1000)
    Order.objects.filter(pk=order.pk).update(state=State.SENT, completed_at=timezone.now())
    order_finished(order, Status.PARTIAL, remains=250, refund="0.50000")
    client.force_login(customer)
    html = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert 'id="order-refund"' in html and ">0.50 USD</span>" in html and ">1.50 USD</span>" in html
    assert 'value="75"' in html and "750 of 1000" in html
    assert "Refill guaranteed until" in html
    assert f'href="{reverse("orders:new")}?reorder={order.pk}"' in html


def test_drip_feed_progress_counts_whole_runs(customer, service):
    fund(customer, "100")
    order = order_booked(customer, service, charge="10.00000", quantity=5000)
    Order.objects.filter(pk=order.pk).update(runs=5, interval=60, status=Status.IN_PROGRESS, remains=2500)
    order.refresh_from_db()
    facts = order_facts(order=order)
    assert (facts.delivered, facts.percent, facts.runs_done) == (2500, 50, 2)
    assert facts.refunded == Decimal("0") and facts.refill_until is None


def test_the_refill_window_closes(customer, service):
    fund(customer, "100")
    order = order_booked(customer, service, charge="1.00000")
    done = timezone.now() - timedelta(days=service.refill_days + 1)
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED, remains=0, completed_at=done)
    order.refresh_from_db()
    facts = order_facts(order=order)
    assert facts.refill_until == done + timedelta(days=service.refill_days) and not facts.refill_open
