from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from kernel.money import refund_for_remains
from orders.models import Order, State, Status
from orders.services import order_submit, order_transition
from providers.models import ProviderCall
from tests.orders.factories import fund, ledger
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/admin"
CHANGELIST = "admin:orders_order_changelist"


@pytest.fixture
def order(customer, shop, place):
    fund(customer)
    return place(customer, shop.service(allow_duplicate_link=True), link=LINK, quantity="1000")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def unknown(order: Order) -> Order:
    order_transition(order=order, state=State.SENDING, reason="test")
    order_transition(order=order, state=State.UNKNOWN, reason="test: read timeout")
    return order


def sent(order: Order, pid: str = "555") -> Order:
    order_transition(order=order, state=State.SENDING, reason="test")
    order_transition(order=order, state=State.SENT, reason="test", changes={"provider_order_id": pid})
    return order


def act(admin_client, action: str, *orders: Order, **extra: str):
    data = {"action": action, "_selected_action": [o.pk for o in orders], **extra}
    return admin_client.post(reverse(CHANGELIST), data, follow=True)


def refunds(order: Order) -> list[Decimal]:
    return list(Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True))


def test_customers_cannot_open_the_admin(client, customer, order):
    client.force_login(customer)
    assert client.get(reverse(CHANGELIST)).status_code == 403


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=Pending", "?state__exact=queued", "?sync_flag__exact=1", "?customer=customer", "?q=instagram"],
)
def test_changelist_filters(admin_client, order, query):
    response = admin_client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200


def test_customer_filter_finds_by_username_email_or_id(admin_client, order, other_customer, shop, place):
    fund(other_customer)
    theirs = place(other_customer, shop.service(), link=LINK, quantity="100")
    for value in ("customer", "customer@example.com", str(order.user_id)):
        ids = [o.pk for o in admin_client.get(reverse(CHANGELIST), {"customer": value}).context["cl"].result_list]
        assert ids == [order.pk], value
    assert theirs.pk not in ids


def test_older_orders_links_walk_the_whole_list_by_keyset(admin_client, customer, shop, place, monkeypatch):
    from orders.admin import OrderAdmin

    monkeypatch.setattr(OrderAdmin, "list_per_page", 2)
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    placed = [place(customer, service, link=LINK, quantity="100").pk for _ in range(5)]
    seen: list[int] = []
    url = reverse(CHANGELIST)
    for _ in range(5):
        cl = admin_client.get(url).context["cl"]
        seen += [o.pk for o in cl.result_list]
        if cl.older_url is None:
            break
        url = reverse(CHANGELIST) + cl.older_url
    assert seen == sorted(placed, reverse=True)  # every order once, newest first
    last = admin_client.get(url)
    assert "Newest orders" in last.content.decode() and "Older orders" not in last.content.decode()
    # Sorted by another column, pages are numbered only.
    assert admin_client.get(reverse(CHANGELIST), {"o": "2"}).context["cl"].older_url is None
    # Combined with a filter, the link keeps the filter.
    filtered = admin_client.get(reverse(CHANGELIST), {"status__exact": "Pending", "before": placed[-1]})
    assert [o.pk for o in filtered.context["cl"].result_list] == sorted(placed[:-1], reverse=True)[:2]
    assert "status__exact=Pending" in filtered.context["cl"].older_url


def test_older_than_junk_is_refused_not_a_crash(admin_client, order):
    response = admin_client.get(reverse(CHANGELIST), {"before": "1;drop"})
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_provider_filter(admin_client, order):
    response = admin_client.get(reverse(CHANGELIST), {"provider__id__exact": order.provider_id})
    assert [o.pk for o in response.context["cl"].result_list] == [order.pk]


def test_change_page_shows_history_and_provider_calls_read_only(admin_client, order):
    order_submit(order_id=order.pk)
    url = reverse("admin:orders_order_change", args=[order.pk])
    html = admin_client.get(url).content.decode()
    assert "sending to" in html and "accepted by" in html
    assert ProviderCall.objects.filter(order_ref=order.pk).exists()
    assert "Calls to the provider" in html and "<td>add</td>" in html
    admin_client.post(url, {"charge": "0", "status": "Canceled", "state": "queued"})
    after = Order.objects.get(pk=order.pk)
    assert (after.charge, after.status, after.state) == (order.charge, Status.PENDING, State.SENT)


def test_resend_sends_queued_orders_but_leaves_unknown_ones(
    admin_client, order, customer, shop, place, queue, django_capture_on_commit_callbacks
):
    other = unknown(place(customer, shop.service(), link=LINK, quantity="100"))
    queue.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin_client, "resend", order, other)
    assert queue.ids() == [order.pk]
    assert "unknown outcome and were left alone" in response.content.decode()
    assert Order.objects.get(pk=other.pk).state == State.UNKNOWN


def test_resend_unknown_needs_a_confirmation(admin_client, order, queue, django_capture_on_commit_callbacks):
    unknown(order)
    queue.clear()
    page = act(admin_client, "resend_unknown", order)
    assert "may already have these orders" in page.content.decode()
    assert Order.objects.get(pk=order.pk).state == State.UNKNOWN and queue == []
    with django_capture_on_commit_callbacks(execute=True):
        act(admin_client, "resend_unknown", order, confirm="yes")
    assert Order.objects.get(pk=order.pk).state == State.QUEUED
    assert queue.ids() == [order.pk]
    event = Order.objects.get(pk=order.pk).events.last()
    assert event.actor.username == "staff" and "never placed" in event.reason


def test_resolve_unknown_by_attaching_the_provider_id(admin_client, order, customer, shop, place):
    unknown(order)
    url = reverse("admin:orders_order_resolve", args=[order.pk])
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"resolution": "placed", "provider_order_id": "9001"})
    order.refresh_from_db()
    assert (order.state, order.provider_order_id) == (State.SENT, "9001")
    other = unknown(place(customer, shop.service(), link=LINK, quantity="100"))
    Order.objects.filter(pk=other.pk).update(provider=order.provider)
    response = admin_client.post(
        reverse("admin:orders_order_resolve", args=[other.pk]), {"resolution": "placed", "provider_order_id": "9001"}
    )
    assert "already attached to another order" in response.content.decode()
    assert Order.objects.get(pk=other.pk).state == State.UNKNOWN


def test_resolve_unknown_as_never_placed_cancels_and_refunds(admin_client, order, customer):
    unknown(order)
    before = ledger(customer)[0]
    admin_client.post(reverse("admin:orders_order_resolve", args=[order.pk]), {"resolution": "cancel"})
    order.refresh_from_db()
    assert (order.state, order.status) == (State.CANCELED, Status.CANCELED)
    assert ledger(customer)[0] == before + order.charge
    assert ledger_audit() == []


def test_cancel_and_refund_asks_then_refunds_once(admin_client, order, customer):
    sent(order)
    page = act(admin_client, "cancel_and_refund", order)
    assert "whole charge back" in page.content.decode() and refunds(order) == []
    act(admin_client, "cancel_and_refund", order, confirm="yes", reason="customer complaint")
    act(admin_client, "cancel_and_refund", order, confirm="yes")
    order.refresh_from_db()
    assert order.status == Status.CANCELED and order.state == State.SENT
    assert refunds(order) == [order.charge]
    assert "customer complaint" in order.events.last().reason
    assert ledger_audit() == []


def test_cancel_and_refund_refuses_an_order_being_sent(admin_client, order):
    order_transition(order=order, state=State.SENDING, reason="test")
    response = act(admin_client, "cancel_and_refund", order, confirm="yes")
    assert "being sent right now" in response.content.decode()
    assert refunds(order) == []


def test_set_partial_refunds_the_remains(admin_client, order):
    sent(order)
    url = reverse("admin:orders_order_partial", args=[order.pk])
    response = admin_client.post(url, {"remains": "1001"})
    assert "Remains must be between 0 and 1000" in response.content.decode()
    admin_client.post(url, {"remains": "250"})
    order.refresh_from_db()
    assert (order.status, order.remains) == (Status.PARTIAL, 250)
    assert refunds(order) == [refund_for_remains(charge=order.charge, remains=250, quantity=1000)]
    assert ledger_audit() == []


def test_mark_completed(admin_client, order):
    sent(order)
    act(admin_client, "mark_completed", order)
    order.refresh_from_db()
    assert order.status == Status.COMPLETED and refunds(order) == []
    response = act(admin_client, "mark_completed", order)
    assert "must be sent and active" in response.content.decode()


def test_refill_and_cancel_request_lists(admin_client):
    assert admin_client.get(reverse("admin:orders_refill_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:orders_cancelrequest_changelist")).status_code == 200


def test_the_order_lists_checkbox_is_djangos_own_markup(order):
    """The list writes each row's action checkbox directly (kernel.admin); it must stay what
    Django's widget renders, which the admin's select-all script reads."""
    from django.contrib import admin as django_admin

    ours = django_admin.site._registry[Order].action_checkbox(order)
    djangos = django_admin.ModelAdmin.action_checkbox(django_admin.site._registry[Order], order)
    assert str(ours) == str(djangos)
    assert f'value="{order.pk}"' in ours and 'class="action-select"' in ours


def test_the_order_list_shows_each_column_from_its_narrowed_rows(admin_client, order, customer, shop, place):
    """The page reads only the columns it shows: every one still appears, and three rows cost
    the queries one does (a column left out of the narrowed read would cost one per row)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    admin_client.get(reverse(CHANGELIST))  # what the first request reads into the cache
    with CaptureQueriesContext(connection) as one:
        body = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert f"Order #{order.pk}" in body
    assert order.user.username in body and order.service.name in body and order.provider.name in body
    for n in range(2):
        place(customer, shop.service(allow_duplicate_link=True), link=f"{LINK}/{n}", quantity="1000")
    with CaptureQueriesContext(connection) as three:
        assert admin_client.get(reverse(CHANGELIST)).content.decode().count('class="action-select"') == 3
    assert len(three) == len(one), [q["sql"][:120] for q in three]
