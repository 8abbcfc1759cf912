from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from kernel.money import refund_for_remains
from orders.models import Order, State, Status
from orders.services import order_submit, order_sync_chunk, order_transition, orders_sync_plan
from providers.client import OrderStatus, ProviderClient, Rejected, UnknownOutcome
from tests.orders.factories import fund
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/"


@pytest.fixture
def sent(customer, shop, place):
    """Make n orders and send them to the simulator."""

    def make(n: int = 1, *, quantity: str = "1000", **fields: Any) -> list[Order]:
        fund(customer, "1000")
        service = shop.service(allow_duplicate_link=True, **fields.pop("service", {}))
        orders = []
        for i in range(n):
            order = place(customer, service, link=f"{LINK}{i}", quantity=quantity, **fields)
            assert order_submit(order_id=order.pk) == "sent"
            order.refresh_from_db()
            orders.append(order)
        return orders

    return make


def sync(*orders: Order) -> dict[str, int]:
    provider_id = orders[0].provider_id
    assert provider_id is not None
    return order_sync_chunk(provider_id=provider_id, order_ids=[o.pk for o in orders])


def pid(order: Order) -> int:
    return int(order.provider_order_id or 0)


def refunds(order: Order) -> list[Decimal]:
    return list(Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True))


def test_completed_is_recorded_without_refund(sent, simulator):
    (order,) = sent()
    simulator.force_status(pid(order), "Completed", start_count=120)
    assert sync(order)["changed"] == 1
    order.refresh_from_db()
    assert (order.status, order.remains, order.start_count) == (Status.COMPLETED, 0, 120)
    assert order.completed_at is not None and order.last_checked_at is not None
    assert refunds(order) == []
    assert ledger_audit() == []


def test_partial_refunds_the_remains_once(sent, simulator):
    (order,) = sent()
    simulator.force_status(pid(order), "Partial", remains=157)
    sync(order)
    order.refresh_from_db()
    assert (order.status, order.remains) == (Status.PARTIAL, 157)
    expected = refund_for_remains(charge=order.charge, remains=157, quantity=1000)
    assert expected == Decimal("0.20410")
    assert refunds(order) == [expected]
    assert sync(order)["checked"] == 0  # terminal: not asked again
    assert refunds(order) == [expected]
    entry = Entry.objects.get(order_ref=order.pk, kind="refund")
    assert entry.idempotency_key == f"order:{order.pk}:refund"
    assert ledger_audit() == []


def test_canceled_refunds_the_whole_charge(sent, simulator):
    (order,) = sent()
    simulator.force_status(pid(order), "Canceled")
    sync(order)
    order.refresh_from_db()
    assert order.status == Status.CANCELED
    assert refunds(order) == [order.charge]
    assert ledger_audit() == []


def test_in_progress_updates_start_count_and_remains(sent, simulator):
    (order,) = sent()
    simulator.force_status(pid(order), "In progress", remains=600, start_count=5000)
    sync(order)
    order.refresh_from_db()
    assert (order.status, order.remains, order.start_count) == (Status.IN_PROGRESS, 600, 5000)
    assert [
        (e.from_status, e.to_status)
        for e in order.events.filter(from_status=Status.PENDING, to_status=Status.IN_PROGRESS)
    ]
    simulator.force_status(pid(order), "In progress", remains=300)
    sync(order)
    order.refresh_from_db()
    assert order.remains == 300 and order.events.count() == 4  # no event when the status stays


def test_dripfeed_keeps_its_runs_and_refunds_on_the_total(sent, simulator):
    (order,) = sent(quantity="100", runs="4", interval="15", service={"dripfeed": True})
    assert order.quantity == 400
    simulator.force_status(pid(order), "Partial", remains=100)
    sync(order)
    order.refresh_from_db()
    assert (order.runs, order.interval, order.status) == (4, 15, Status.PARTIAL)
    assert refunds(order) == [refund_for_remains(charge=order.charge, remains=100, quantity=400)]


def test_incorrect_order_id_flags_for_staff_and_never_refunds(sent):
    (order,) = sent()
    Order.objects.filter(pk=order.pk).update(provider_order_id="987654")
    assert sync(order)["flagged"] == 1
    order.refresh_from_db()
    assert (order.status, order.state, order.sync_flag) == (Status.PENDING, State.SENT, True)
    assert order.sync_note == "provider says: Incorrect order ID"
    assert refunds(order) == []


@pytest.mark.parametrize(
    ("reply", "note"),
    [
        (
            OrderStatus(status="Partial", raw_status="Partial", remains=1001),
            "provider reports remains 1001 for a quantity of 1000",
        ),
        (
            OrderStatus(status="In progress", raw_status="In progress", remains=-1),
            "provider reports remains -1 for a quantity of 1000",
        ),
        (OrderStatus(status="Partial", raw_status="Partial", remains=None), "provider reports Partial without remains"),
        (UnknownOutcome("status: unreadable entry"), "unreadable status: status: unreadable entry"),
        (Rejected("Incorrect order ID"), "provider says: Incorrect order ID"),
        (None, "the provider's reply did not mention this order"),
    ],
)
def test_nonsense_changes_nothing_but_a_flag(sent, monkeypatch, reply, note):
    (order,) = sent()
    replies = {} if reply is None else {order.provider_order_id: reply}
    monkeypatch.setattr(ProviderClient, "statuses", lambda self, ids: replies)
    sync(order)
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.remains, after.sync_flag, after.sync_note) == (Status.PENDING, None, True, note)
    assert refunds(order) == []


def test_a_good_reply_clears_the_flag(sent, simulator):
    (order,) = sent()
    Order.objects.filter(pk=order.pk).update(sync_flag=True, sync_note="old")
    sync(order)
    order.refresh_from_db()
    assert (order.sync_flag, order.sync_note) == (False, "")


@pytest.mark.parametrize("fault", ["http502_html", "http200_html", "truncated_json", "close", "http429"])
def test_garbage_status_replies_change_nothing(sent, simulator, fault):
    orders = sent(2)
    for order in orders:
        simulator.force_status(pid(order), "Canceled")
    simulator.set_fault(fault, action="status")
    assert sync(*orders)["skipped"] == 2
    for order in orders:
        order.refresh_from_db()
        assert (order.status, order.sync_flag) == (Status.PENDING, False)
        assert refunds(order) == []


def test_an_empty_object_reply_flags_each_order(sent, simulator):
    orders = sent(2)
    simulator.set_fault("empty_object", action="status")
    assert sync(*orders)["flagged"] == 2
    assert not Entry.objects.filter(kind="refund").exists()


def test_whole_request_rejection_changes_nothing(sent, simulator):
    orders = sent(1)
    simulator.set_fault("error", action="status", text="Invalid API key")
    assert sync(*orders)["skipped"] == 1
    assert Order.objects.get(pk=orders[0].pk).sync_flag is False


def test_terminal_statuses_never_regress(sent, simulator):
    (order,) = sent()
    order_transition(order=order, status=Status.COMPLETED, reason="test")
    with pytest.raises(ValueError, match="not allowed"):
        order_transition(order=order, status=Status.IN_PROGRESS, reason="test")
    simulator.force_status(pid(order), "Canceled")
    assert sync(order) == {"checked": 0, "changed": 0, "flagged": 0, "skipped": 0}
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED
    assert refunds(order) == []


def test_a_batch_refunds_exactly_and_a_second_sync_adds_nothing(sent, simulator):
    # 40 here; test_worker.py runs the full 100 through the workers.
    orders = sent(40, quantity="997")
    expected: dict[int, tuple[str, Decimal]] = {}
    for i, order in enumerate(orders):
        kind = i % 5
        if kind == 0:
            simulator.force_status(pid(order), "Completed")
            expected[order.pk] = (Status.COMPLETED, Decimal("0"))
        elif kind == 1:
            simulator.force_status(pid(order), "Partial", remains=i * 7)
            expected[order.pk] = (Status.PARTIAL, refund_for_remains(charge=order.charge, remains=i * 7, quantity=997))
        elif kind == 2:
            simulator.force_status(pid(order), "Canceled")
            expected[order.pk] = (Status.CANCELED, order.charge)
        elif kind == 3:
            simulator.force_status(pid(order), "In progress", remains=500)
            expected[order.pk] = (Status.IN_PROGRESS, Decimal("0"))
        else:
            Order.objects.filter(pk=order.pk).update(provider_order_id=f"9{order.pk:07d}")
            expected[order.pk] = (Status.PENDING, Decimal("0"))
    plan = orders_sync_plan()
    assert [len(ids) for _, ids in plan] == [40]
    counts = order_sync_chunk(provider_id=plan[0][0], order_ids=plan[0][1])
    assert counts == {"checked": 0, "changed": 32, "flagged": 8, "skipped": 0}
    for order in Order.objects.filter(pk__in=expected):
        status, refund = expected[order.pk]
        assert order.status == status
        assert sum(refunds(order), Decimal("0")) == refund
    assert simulator.request_counts().get("status") == 1
    entries = Entry.objects.count()
    later = timezone.now() + timedelta(minutes=5)
    for provider_id, ids in orders_sync_plan(now=later):
        order_sync_chunk(provider_id=provider_id, order_ids=ids)
    assert Entry.objects.count() == entries
    assert ledger_audit() == []


# --- The plan ----------------------------------------------------------------------------------
def test_plan_takes_the_least_recently_checked_first_and_leases_them(sent):
    orders = sent(5)
    now = timezone.now()
    ages = [None, 10, 30, 5, None]
    for order, minutes in zip(orders, ages, strict=True):
        checked = None if minutes is None else now - timedelta(minutes=minutes)
        Order.objects.filter(pk=order.pk).update(last_checked_at=checked)
    plan = orders_sync_plan(now=now, max_chunks=1)
    assert plan == [(orders[0].provider_id, [orders[0].pk, orders[4].pk, orders[2].pk, orders[1].pk, orders[3].pk])]
    assert orders_sync_plan(now=now + timedelta(seconds=30)) == []  # leased
    assert len(orders_sync_plan(now=now + timedelta(minutes=2))[0][1]) == 5


def test_plan_skips_finished_and_unsent_orders(sent, customer, shop, place):
    done, active = sent(2)
    order_transition(order=done, status=Status.COMPLETED, reason="test")
    place(customer, shop.service(), link=LINK + "queued", quantity="100")  # still queued
    assert orders_sync_plan() == [(active.provider_id, [active.pk])]


def test_plan_chunks_by_100_and_is_bounded(sent):
    orders = sent(1)
    template = Order.objects.get(pk=orders[0].pk)
    clones = []
    for i in range(249):
        template.pk = None
        template.provider_order_id = f"x{i}"
        template.idempotency_key = None
        template.save()
        clones.append(template.pk)
    plan = orders_sync_plan(max_chunks=2)
    assert [len(ids) for _, ids in plan] == [100, 100]
    rest = orders_sync_plan(max_chunks=2)
    assert [len(ids) for _, ids in rest] == [50]


def test_orders_sync_command_runs_one_pass(sent, simulator):
    orders = sent(3)
    for order in orders:
        simulator.force_status(pid(order), "Completed")
    call_command("orders_sync")
    assert set(Order.objects.values_list("status", flat=True)) == {Status.COMPLETED}
