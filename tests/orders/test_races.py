"""Races on PostgreSQL with real threads: each thread has its own connection and
transaction, as two workers or two web processes would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections

from kernel import protocol
from kernel.money import refund_for_remains
from orders.models import Order, State, Status
from orders.services import OrderError, order_place, order_submit, order_sync_chunk
from tests.orders.factories import fund, ledger
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LINK = "https://instagram.com/p/race"


def together(n: int, func: Callable[[int], Any]) -> list[Any]:
    """Run func(i) in n threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = func(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_sync_workers_on_the_same_orders_refund_once(customer, shop, place, simulator):
    fund(customer, "100")
    service = shop.service(allow_duplicate_link=True)
    orders = []
    for i in range(10):
        order = place(customer, service, link=f"{LINK}/{i}", quantity="1000")
        assert order_submit(order_id=order.pk) == "sent"
        order.refresh_from_db()
        status = "Partial" if i % 2 else "Canceled"
        simulator.force_status(int(order.provider_order_id), status, remains=333)
        orders.append(order)
    ids = [o.pk for o in orders]
    provider_id = orders[0].provider_id
    together(2, lambda i: order_sync_chunk(provider_id=provider_id, order_ids=ids))
    for i, order in enumerate(orders):
        order.refresh_from_db()
        amounts = list(Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True))
        expected = refund_for_remains(charge=order.charge, remains=333, quantity=1000) if i % 2 else order.charge
        assert amounts == [expected]
        assert order.events.filter(to_status__in=[Status.PARTIAL, Status.CANCELED]).count() == 1
    assert ledger_audit() == []


def test_parallel_submits_of_one_order_add_once(customer, shop, place, simulator):
    fund(customer)
    order = place(customer, shop.service(), link=LINK, quantity="100")
    results = together(4, lambda i: order_submit(order_id=order.pk))
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert simulator.adds_total() == 1


def test_parallel_orders_cannot_spend_the_same_money(customer, shop):
    fund(customer, "0.26")  # two orders of 0.13
    service = shop.service(allow_duplicate_link=True)
    results = together(
        5, lambda i: order_place(user=customer, service_id=service.pk, fields={"link": f"{LINK}/{i}", "quantity": 100})
    )
    placed = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, OrderError)]
    assert len(placed) == 2 and len(refused) == 3
    assert {r.message for r in refused} == {protocol.ERR_NOT_ENOUGH_FUNDS}
    assert ledger(customer)[0] == Decimal("0")
    assert Order.objects.count() == 2
    assert ledger_audit() == []


def test_parallel_orders_on_one_link_place_one(customer, shop):
    fund(customer)
    service = shop.service()
    results = together(
        4, lambda i: order_place(user=customer, service_id=service.pk, fields={"link": LINK, "quantity": 100})
    )
    assert sum(isinstance(r, Order) for r in results) == 1
    assert {r.message for r in results if isinstance(r, OrderError)} == {protocol.ERR_DUPLICATE_LINK}
    assert Entry.objects.filter(user=customer, kind="charge").count() == 1


def test_parallel_requests_with_one_idempotency_key_place_one(customer, shop):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    results = together(
        4,
        lambda i: order_place(
            user=customer, service_id=service.pk, fields={"link": LINK, "quantity": 100}, idempotency_key="same"
        ),
    )
    assert all(isinstance(r, Order) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert Entry.objects.filter(user=customer, kind="charge").count() == 1


def test_twenty_retries_with_one_key_on_a_guarded_link_all_get_the_same_order(customer, shop):
    # The duplicate-link guard is on: a retry that waited for the first attempt's lock must
    # be given that attempt's order, never "You have active order with this link".
    fund(customer)
    service = shop.service()
    results = together(
        20,
        lambda i: order_place(
            user=customer, service_id=service.pk, fields={"link": LINK, "quantity": 100}, idempotency_key="retry"
        ),
    )
    assert all(isinstance(r, Order) for r in results), {repr(r) for r in results if not isinstance(r, Order)}
    assert len({r.pk for r in results}) == 1
    assert Entry.objects.filter(user=customer, kind="charge").count() == 1


def test_customer_cancel_racing_the_submit_either_sends_or_refunds(customer, shop, place, simulator):
    from orders.services import cancel_request

    fund(customer)
    service = shop.service(cancel=True, allow_duplicate_link=True)
    for i in range(5):
        order = place(customer, service, link=f"{LINK}/{i}", quantity="100")
        together(
            2,
            lambda k, pk=order.pk: order_submit(order_id=pk) if k == 0 else cancel_request(user=customer, order_id=pk),
        )
        order.refresh_from_db()
        refunds = Entry.objects.filter(order_ref=order.pk, kind="refund").count()
        if order.state == State.CANCELED:
            assert refunds == 1 and order.provider_order_id is None
        else:
            assert order.state == State.SENT and refunds == 0
    assert ledger_audit() == []


def test_a_refund_committing_while_the_customer_places_an_order_does_not_deadlock(customer, shop, place, queue):
    # Found by `make chaos`. A status sync that refunds holds the customer's wallet row and,
    # at COMMIT, checks the ledger entry's deferred foreign key with FOR KEY SHARE on the
    # user row. Placing locked that user row (the duplicate-link guard) and then waited for
    # the wallet row: PostgreSQL broke the cycle by killing one of the two transactions.
    import time

    from django.db import transaction

    from orders.services import order_transition

    fund(customer)
    service = shop.service(cancel=True)  # duplicate links refused: placing takes the guard's lock
    order = place(customer, service, link=f"{LINK}/refunded", quantity="100")
    holding = threading.Event()

    def refund() -> None:
        with transaction.atomic():  # the shape of _sync_one: row lock, transition, refund
            locked = Order.objects.select_for_update().get(pk=order.pk)
            order_transition(order=locked, state=State.CANCELED, status=Status.CANCELED, reason="provider canceled")
            holding.set()
            time.sleep(1.5)  # placing meanwhile takes its lock and waits for the wallet row

    def place_another() -> Order:
        assert holding.wait(10)
        return order_place(user=customer, service_id=service.pk, fields={"link": f"{LINK}/new", "quantity": 100})

    results = together(2, lambda i: refund() if i == 0 else place_another())
    assert not [r for r in results if isinstance(r, Exception)], results
    assert isinstance(results[1], Order)
    assert Entry.objects.filter(order_ref=order.pk, kind="refund").count() == 1
    assert ledger_audit() == []
