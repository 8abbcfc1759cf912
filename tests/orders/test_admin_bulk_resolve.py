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


# --- Refill and cancel requests stuck in unknown ------------------------------------------------
def unknown_refills(customer, shop, place, n):
    from orders.models import Refill, RequestState

    fund(customer, "100")
    service = shop.service(allow_duplicate_link=True, refill=True)
    refills = []
    for i in range(n):
        order = place(customer, service, link=f"{LINK}/r{i}", quantity="100")
        Order.objects.filter(pk=order.pk).update(
            state=State.SENT, status=Status.COMPLETED, provider_id=order.provider_id, provider_order_id=f"o{i}"
        )
        refills.append(
            Refill.objects.create(order=order, user=customer, provider_id=order.provider_id, state=RequestState.UNKNOWN)
        )
    return refills


def resolve_requests(admin_client, model_name, items, **form):
    data = {"action": "resolve_unknown", "_selected_action": [r.pk for r in items], "confirm": "yes", **form}
    return admin_client.post(reverse(f"admin:orders_{model_name}_changelist"), data, follow=True)


def test_unknown_refills_are_resolved_with_the_providers_refill_ids(admin_client, customer, shop, place):
    from orders.models import Refill, RequestState

    refills = unknown_refills(customer, shop, place, 3)
    response = resolve_requests(
        admin_client, "refill", refills, resolution="sent", provider_ids="r-1\nr-2\nr-3", reason="provider's list"
    )
    assert "Resolved 3 requests." in response.content.decode()
    rows = list(Refill.objects.filter(pk__in=[r.pk for r in refills]).order_by("pk"))
    assert [(r.state, r.provider_refill_id) for r in rows] == [(RequestState.SENT, f"r-{n}") for n in (1, 2, 3)]
    assert all("provider's list" in r.note for r in rows)


def test_unknown_refills_that_do_not_match_change_nothing(admin_client, customer, shop, place):
    from orders.models import Refill, RequestState

    refills = unknown_refills(customer, shop, place, 3)
    resolve_requests(admin_client, "refill", refills, resolution="sent", provider_ids="r-1\nr-2", reason="x")
    assert set(Refill.objects.filter(pk__in=[r.pk for r in refills]).values_list("state", flat=True)) == {
        RequestState.UNKNOWN
    }


def test_unknown_cancels_are_sent_again_or_refused(
    admin_client, customer, shop, place, queue, django_capture_on_commit_callbacks
):
    from orders.models import CancelRequest, RequestState

    fund(customer, "100")
    order = place(customer, shop.service(cancel=True), link=LINK, quantity="100")
    first = CancelRequest.objects.create(
        order=order, user=customer, provider_id=order.provider_id, state=RequestState.UNKNOWN
    )
    with django_capture_on_commit_callbacks(execute=True):
        resolve_requests(admin_client, "cancelrequest", [first], resolution="requeue", reason="never received")
    first.refresh_from_db()
    assert first.state == RequestState.QUEUED and queue.ids("cancel") == [first.pk]
    second = CancelRequest.objects.create(
        order=order, user=customer, provider_id=order.provider_id, state=RequestState.UNKNOWN
    )
    resolve_requests(admin_client, "cancelrequest", [second], resolution="rejected", reason="provider says no")
    second.refresh_from_db()
    assert second.state == RequestState.REJECTED


def test_view_only_staff_cannot_resolve_requests(client, customer, shop, place):
    from django.contrib.auth.models import Permission

    from orders.models import Refill, RequestState
    from tests.factories import UserFactory

    refills = unknown_refills(customer, shop, place, 1)
    viewer = UserFactory(username="looker", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(viewer)
    resolve_requests(client, "refill", refills, resolution="rejected", reason="x")
    assert Refill.objects.get(pk=refills[0].pk).state == RequestState.UNKNOWN
