"""Staff resolve a queue of unknown orders in one go: placed (the provider's ids pasted one a
line, matched and validated), sent again, or refunded; all of them or none."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orders.models import Order, OrderEvent, State, Status
from orders.services import OrderError, provider_ids_match
from tests.orders.factories import fund, ledger
from tests.orders.test_admin import CHANGELIST, unknown
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/bulk"


@pytest.fixture
def ten(customer, shop, place):
    fund(customer, "100")
    service = shop.service(allow_duplicate_link=True)
    return [unknown(place(customer, service, link=f"{LINK}/{n}", quantity="100")) for n in range(10)]


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def resolve(admin_client, orders, **form):
    data = {"action": "resolve_unknown_bulk", "_selected_action": [o.pk for o in orders], "confirm": "yes", **form}
    return admin_client.post(reverse(CHANGELIST), data, follow=True)


def states(orders):
    return [(o.state, o.status, o.provider_order_id) for o in Order.objects.filter(pk__in=[o.pk for o in orders])]


def test_ten_unknown_orders_become_sent_with_the_pasted_ids(admin_client, ten):
    page = admin_client.post(
        reverse(CHANGELIST), {"action": "resolve_unknown_bulk", "_selected_action": [o.pk for o in ten]}
    )
    assert "Resolve orders whose outcome is unknown" in page.content.decode()  # asks first
    assert {o.state for o in Order.objects.filter(pk__in=[o.pk for o in ten])} == {State.UNKNOWN}
    ids = "\n".join(f"up-{n}" for n in range(10))
    response = resolve(admin_client, ten, resolution="placed", provider_ids=ids, reason="provider's export")
    assert "Resolved 10 orders." in response.content.decode()
    by_pk = {o.pk: o for o in Order.objects.filter(pk__in=[o.pk for o in ten])}
    for n, order in enumerate(sorted(ten, key=lambda o: o.pk)):
        assert (by_pk[order.pk].state, by_pk[order.pk].provider_order_id) == (State.SENT, f"up-{n}")
    assert OrderEvent.objects.filter(order__in=ten, reason__contains="provider's export").count() == 10


def test_a_paste_that_does_not_match_changes_nothing(admin_client, ten):
    before = states(ten)
    for ids in ("\n".join(f"up-{n}" for n in range(9)), "\n".join(["same"] * 10), f"{ten[0].pk} a\n99999999 b"):
        response = resolve(admin_client, ten, resolution="placed", provider_ids=ids, reason="x")
        assert "Resolved" not in response.content.decode()
        assert states(ten) == before


def test_one_id_already_used_elsewhere_changes_none_of_them(admin_client, ten, customer, shop, place):
    other = place(customer, shop.service(), link=LINK, quantity="100")
    Order.objects.filter(pk=other.pk).update(provider_id=ten[0].provider_id, provider_order_id="taken")
    before = states(ten)
    ids = "\n".join(["taken"] + [f"up-{n}" for n in range(9)])
    response = resolve(admin_client, ten, resolution="placed", provider_ids=ids, reason="x")
    assert "already attached to another order" in response.content.decode()
    assert states(ten) == before


def test_never_placed_orders_are_refunded_with_the_reason(admin_client, ten, customer):
    balance, _ = ledger(customer)
    response = resolve(admin_client, ten, resolution="cancel", reason="provider has no record")
    assert "Resolved 10 orders." in response.content.decode()
    assert {s[:2] for s in states(ten)} == {(State.CANCELED, Status.CANCELED)}
    assert ledger(customer)[0] == balance + sum(o.charge for o in ten)
    assert Entry.objects.filter(order_ref__in=[o.pk for o in ten], kind="refund").count() == 10
    assert ledger_audit() == []


def test_a_reason_is_required(admin_client, ten):
    before = states(ten)
    resolve(admin_client, ten, resolution="cancel", reason="")
    assert states(ten) == before


def test_pairs_may_name_our_order_first():
    assert provider_ids_match(order_ids=[7, 3], text="7, a7\n3:a3") == {7: "a7", 3: "a3"}
    assert provider_ids_match(order_ids=[7, 3], text="x3\nx7") == {3: "x3", 7: "x7"}
    with pytest.raises(OrderError, match="one form for every line"):
        provider_ids_match(order_ids=[7, 3], text="x3\n7 x7")
