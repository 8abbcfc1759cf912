from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, Refill, State, Status
from orders.services import order_submit, order_transition
from tests.orders.factories import fund, ledger
from wallets.models import Entry

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/view"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def service(shop):
    return shop.service(price="2.000000", refill=True, cancel=True)


@pytest.fixture
def order(customer, service, place):
    fund(customer)
    return place(customer, service, link=LINK, quantity="100")


def completed(order: Order) -> Order:
    order_transition(order=order, state=State.SENDING, reason="test")
    order_transition(order=order, state=State.SENT, reason="test", changes={"provider_order_id": f"p{order.pk}"})
    order_transition(order=order, status=Status.COMPLETED, reason="test")
    return order


# --- Access ----------------------------------------------------------------------------------
GET_PAGES = ["orders:new", "orders:mass", "orders:list", "orders:refills"]


@pytest.mark.parametrize("name", GET_PAGES)
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", GET_PAGES)
def test_pages_render(client, customer, service, name):
    client.force_login(customer)
    assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", ["orders:detail", "orders:refill", "orders:cancel"])
def test_another_customers_order_is_404(client, other_customer, order, name):
    client.force_login(other_customer)
    method = client.get if name == "orders:detail" else client.post
    assert method(reverse(name, args=[order.pk])).status_code == 404


@pytest.mark.parametrize("name", ["orders:refill", "orders:cancel"])
def test_get_on_a_post_only_url_is_405(client, customer, order, name):
    client.force_login(customer)
    assert client.get(reverse(name, args=[order.pk])).status_code == 405


@pytest.mark.parametrize("name", ["orders:list", "orders:refills"])
def test_post_on_a_list_is_405(client, customer, name):
    client.force_login(customer)
    assert client.post(reverse(name)).status_code == 405


# --- New order -------------------------------------------------------------------------------
def test_new_order_page_embeds_services_as_json_and_only_external_scripts(client, customer, service):
    client.force_login(customer)
    response = client.get(reverse("orders:new"))
    html = response.content.decode()
    data = json.loads(
        re.search(r'<script id="services-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert data[0]["id"] == service.pk and data[0]["rate"] == "2.000000" and data[0]["fields"] == ["link", "quantity"]
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "orders/new_order.js" in html


def test_customer_rates_are_shown_with_their_discount(client, customer, service):
    customer.discount_percent = Decimal("50")
    customer.save()
    client.force_login(customer)
    html = client.get(reverse("orders:new")).content.decode()
    assert "1.00 USD per 1000" in html


def test_upstream_text_is_escaped_everywhere(client, customer, shop, place):
    fund(customer)
    service = shop.service(name=XSS, description=XSS)
    order = place(customer, service, link=LINK, quantity="100")
    client.force_login(customer)
    for url in (reverse("orders:new"), reverse("orders:list"), reverse("orders:detail", args=[order.pk])):
        html = client.get(url).content.decode()
        assert XSS not in html
        assert "<img src=x" not in html
    assert "\\u003Cscript\\u003E" in client.get(reverse("orders:new")).content.decode()


def test_placing_an_order_charges_and_redirects_to_it(
    client, customer, service, queue, django_capture_on_commit_callbacks
):
    fund(customer, "1")
    client.force_login(customer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("orders:new"), {"service": service.pk, "link": LINK, "quantity": "100", "token": "t1"}, follow=True
        )
    order = Order.objects.get(user=customer)
    assert response.redirect_chain[-1][0] == reverse("orders:detail", args=[order.pk])
    assert f"Order #{order.pk} placed: 0.20 USD charged." in response.content.decode()
    assert ledger(customer)[0] == Decimal("0.80000")
    assert queue.ids() == [order.pk]


def test_the_same_page_submitted_twice_places_one_order(client, customer, shop, queue):
    fund(customer, "1")
    service = shop.service(allow_duplicate_link=True)
    client.force_login(customer)
    form = {"service": service.pk, "link": LINK, "quantity": "100", "token": "same"}
    client.post(reverse("orders:new"), form)
    client.post(reverse("orders:new"), form)
    assert Order.objects.filter(user=customer).count() == 1
    assert Entry.objects.filter(user=customer, kind="charge").count() == 1


def test_a_refused_order_shows_the_reason_and_changes_nothing(client, customer, service, queue):
    fund(customer, "1")
    client.force_login(customer)
    before = ledger(customer)
    response = client.post(
        reverse("orders:new"), {"service": service.pk, "link": "javascript:alert(1)", "quantity": "100"}
    )
    assert response.status_code == 200
    assert "Incorrect link" in response.content.decode()
    assert ledger(customer) == before and not Order.objects.exists() and queue == []


def test_the_form_sends_only_the_fields_of_the_type(client, customer, shop):
    fund(customer)
    service = shop.service(type="Custom Comments", min=1, dripfeed=False)
    client.force_login(customer)
    client.post(
        reverse("orders:new"),
        {"service": service.pk, "link": LINK, "quantity": "999", "comments": "a\nb", "runs": "5", "interval": "3"},
    )
    order = Order.objects.get(user=customer)
    assert order.fields == {"link": LINK, "comments": ["a", "b"]} and order.quantity == 2


def test_dripfeed_needs_the_toggle(client, customer, shop):
    fund(customer)
    service = shop.service(dripfeed=True)
    client.force_login(customer)
    client.post(
        reverse("orders:new"), {"service": service.pk, "link": LINK, "quantity": "100", "runs": "3", "interval": "5"}
    )
    client.post(
        reverse("orders:new"),
        {"service": service.pk, "link": LINK + "2", "quantity": "100", "runs": "3", "interval": "5", "dripfeed": "on"},
    )
    assert sorted(Order.objects.values_list("quantity", flat=True)) == [100, 300]


def test_subscription_from_the_form(client, customer, shop):
    fund(customer)
    service = shop.service(type="Subscriptions", min=10, max=1000)
    client.force_login(customer)
    client.post(
        reverse("orders:new"),
        {
            "service": service.pk,
            "username": "someone",
            "min": "10",
            "max": "100",
            "delay": "30",
            "expiry": "2099-12-31",
        },
    )
    order = Order.objects.get(user=customer)
    assert order.fields["expiry"] == "31/12/2099" and order.link == ""


# --- Mass order ------------------------------------------------------------------------------
def test_mass_order_places_good_lines_and_charges_nothing_for_bad_ones(client, customer, service, queue):
    fund(customer, "1")
    client.force_login(customer)
    text = "\n".join(
        [
            f"{service.pk}|{LINK}/1|100",
            f"{service.pk}|javascript:x|100",
            "garbage",
            "",
            f"999999|{LINK}/2|100",
            f"{service.pk}|{LINK}/3?a=1|b|50",
        ]
    )
    response = client.post(reverse("orders:mass"), {"orders": text, "token": "m1"})
    assert response.status_code == 302
    orders = list(Order.objects.filter(user=customer).order_by("id"))
    assert [o.link for o in orders] == [f"{LINK}/1", f"{LINK}/3?a=1|b"]
    assert ledger(customer)[0] == Decimal("1") - Decimal("0.20000") - Decimal("0.10000")
    page = client.get(reverse("orders:mass")).content.decode()
    assert "Incorrect link" in page and "Incorrect service ID" in page
    assert "Write the line as service_id|link|quantity" in page
    assert f"Order #{orders[0].pk}" in page
    # Shown once.
    assert "mass-results" not in client.get(reverse("orders:mass")).content.decode()
    # The same page again places nothing new.
    client.post(reverse("orders:mass"), {"orders": text, "token": "m1"})
    assert Order.objects.filter(user=customer).count() == 2


def test_mass_order_is_bounded(client, customer, service):
    client.force_login(customer)
    text = "\n".join(f"{service.pk}|{LINK}/{i}|100" for i in range(501))
    response = client.post(reverse("orders:mass"), {"orders": text})
    assert response.status_code == 200 and "At most 500 orders at once." in response.content.decode()


# --- Lists -----------------------------------------------------------------------------------
def test_orders_list_shows_only_mine_with_tabs_search_and_keyset_pages(client, customer, other_customer, shop, place):
    fund(customer)
    fund(other_customer)
    service = shop.service(allow_duplicate_link=True)
    mine = [place(customer, service, link=f"{LINK}/{i}", quantity="10") for i in range(30)]
    theirs = place(other_customer, service, link=f"{LINK}/theirs", quantity="10")
    completed(mine[0])
    client.force_login(customer)

    with CaptureQueriesContext(connection) as queries:
        first = client.get(reverse("orders:list"))
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "OFFSET" not in sql and "COUNT(" not in sql
    assert len(queries.captured_queries) <= 12
    rows = first.context["table"].rows
    assert len(rows) == 25 and rows[0].record.pk == mine[-1].pk
    assert first.context["next_url"] == f"?before={mine[5].pk}"
    second = client.get(reverse("orders:list") + first.context["next_url"])
    assert [r.record.pk for r in second.context["table"].rows] == [o.pk for o in reversed(mine[:5])]
    assert second.context["next_url"] == ""
    assert f"/orders/{theirs.pk}/" not in first.content.decode() + second.content.decode()

    tab = client.get(reverse("orders:list"), {"status": "Completed"})
    assert [r.record.pk for r in tab.context["table"].rows] == [mine[0].pk]
    by_id = client.get(reverse("orders:list"), {"q": f"#{mine[3].pk}"})
    assert mine[3].pk in [r.record.pk for r in by_id.context["table"].rows]
    by_link = client.get(reverse("orders:list"), {"q": "view/17"})
    assert [r.record.pk for r in by_link.context["table"].rows] == [mine[17].pk]
    foreign = client.get(reverse("orders:list"), {"q": str(theirs.pk)})
    assert theirs.pk not in [r.record.pk for r in foreign.context["table"].rows]


def test_buttons_show_only_where_allowed(client, customer, shop, place):
    fund(customer)
    refillable = shop.service(refill=True, cancel=False)
    cancelable = shop.service(refill=False, cancel=True)
    neither = shop.service()
    done = completed(place(customer, refillable, link=LINK, quantity="100"))
    waiting = place(customer, cancelable, link=LINK, quantity="100")
    plain = place(customer, neither, link=LINK, quantity="100")
    client.force_login(customer)
    html = client.get(reverse("orders:list")).content.decode()
    assert reverse("orders:refill", args=[done.pk]) in html
    assert reverse("orders:cancel", args=[waiting.pk]) in html
    assert reverse("orders:refill", args=[waiting.pk]) not in html
    assert reverse("orders:cancel", args=[done.pk]) not in html
    assert (
        reverse("orders:refill", args=[plain.pk]) not in html and reverse("orders:cancel", args=[plain.pk]) not in html
    )


def test_detail_shows_the_order_and_its_status_history(client, customer, order):
    order_transition(order=order, state=State.SENDING, reason="internal detail")
    order_transition(
        order=order,
        state=State.REJECTED,
        status=Status.CANCELED,
        reason="internal",
        changes={"customer_note": "Incorrect link"},
    )
    client.force_login(customer)
    html = client.get(reverse("orders:detail", args=[order.pk])).content.decode()
    assert "Incorrect link" in html and "Canceled" in html
    assert "internal detail" not in html and "sending" not in html


# --- Refill and cancel buttons ---------------------------------------------------------------
def test_refill_button_requests_a_refill(client, customer, order, queue):
    completed(order)
    client.force_login(customer)
    response = client.post(reverse("orders:refill", args=[order.pk]), {"next": reverse("orders:list")})
    assert response.status_code == 302 and response["Location"] == reverse("orders:list")
    assert Refill.objects.filter(order=order).count() == 1
    again = client.post(reverse("orders:refill", args=[order.pk]), follow=True)
    assert "A refill for this order is already in progress" in again.content.decode()
    assert Refill.objects.filter(order=order).count() == 1
    listing = client.get(reverse("orders:refills"))
    assert [r.record.order_id for r in listing.context["table"].rows] == [order.pk]


def test_next_must_stay_on_this_site(client, customer, order):
    client.force_login(customer)
    response = client.post(reverse("orders:cancel", args=[order.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("orders:detail", args=[order.pk])


def test_cancel_button_cancels_a_queued_order_with_a_refund(client, customer, order):
    client.force_login(customer)
    before = ledger(customer)[0]
    response = client.post(reverse("orders:cancel", args=[order.pk]), follow=True)
    assert "canceled and refunded" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Status.CANCELED and ledger(customer)[0] == before + order.charge
    assert order_submit(order_id=order.pk) == "skipped"


def test_refills_list_shows_only_mine(client, customer, other_customer, order, committed):
    from orders.services import refill_request

    completed(order)
    committed(refill_request, user=customer, order_id=order.pk)
    client.force_login(other_customer)
    assert list(client.get(reverse("orders:refills")).context["table"].rows) == []
