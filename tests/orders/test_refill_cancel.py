from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from kernel import protocol
from orders.models import CancelRequest, Order, Refill, RefillStatus, RequestState, State, Status
from orders.services import (
    OrderError,
    cancel_request,
    cancel_submit,
    order_submit,
    order_sync_chunk,
    orders_sweep,
    refill_request,
    refill_submit,
    refill_sync_chunk,
    refills_sync_plan,
)
from tests.orders.factories import fund, ledger
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/refill"


def sync(order: Order) -> None:
    assert order.provider_id is not None
    order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])
    order.refresh_from_db()


@pytest.fixture
def completed(customer, shop, place, simulator):
    fund(customer)
    order = place(customer, shop.service(refill=True, cancel=True), link=LINK, quantity="100")
    order_submit(order_id=order.pk)
    order.refresh_from_db()
    simulator.force_status(int(order.provider_order_id), "Completed")
    sync(order)
    assert order.status == Status.COMPLETED
    return order


def refused(committed: Any, queue: Any, func: Any, message: str, **kwargs: Any) -> None:
    before = (Refill.objects.count(), CancelRequest.objects.count(), Entry.objects.count(), len(queue))
    with pytest.raises(OrderError) as caught:
        committed(func, **kwargs)
    assert caught.value.message == message
    assert (Refill.objects.count(), CancelRequest.objects.count(), Entry.objects.count(), len(queue)) == before


# --- Refill ----------------------------------------------------------------------------------
def test_refill_is_forwarded_and_its_status_synced(completed, customer, committed, queue, simulator):
    refill = committed(refill_request, user=customer, order_id=completed.pk)
    assert (refill.state, refill.status) == (RequestState.QUEUED, RefillStatus.PENDING)
    assert queue.ids("refill") == [refill.pk]
    assert refill_submit(refill_id=refill.pk) == "sent"
    assert refill_submit(refill_id=refill.pk) == "skipped"
    refill.refresh_from_db()
    assert refill.state == RequestState.SENT and refill.provider_refill_id
    simulator.force_refill_status(int(refill.provider_refill_id), "Completed")
    plan = refills_sync_plan()
    assert plan == [(refill.provider_id, [refill.pk])]
    assert refill_sync_chunk(provider_id=plan[0][0], refill_ids=plan[0][1])["changed"] == 1
    refill.refresh_from_db()
    assert refill.status == RefillStatus.COMPLETED
    # Finished: another refill may follow.
    assert committed(refill_request, user=customer, order_id=completed.pk).pk != refill.pk


def test_one_refill_in_flight_at_a_time(completed, customer, committed, queue):
    committed(refill_request, user=customer, order_id=completed.pk)
    refused(
        committed,
        queue,
        refill_request,
        "A refill for this order is already in progress",
        user=customer,
        order_id=completed.pk,
    )


def test_refill_is_refused_outside_the_rules(completed, customer, other_customer, committed, queue, shop, place):
    refused(committed, queue, refill_request, protocol.ERR_INCORRECT_ORDER, user=other_customer, order_id=completed.pk)
    Order.objects.filter(pk=completed.pk).update(completed_at=timezone.now() - timedelta(days=31))
    refused(
        committed,
        queue,
        refill_request,
        "The refill period for this order has ended",
        user=customer,
        order_id=completed.pk,
    )
    completed.service.refill = False
    completed.service.save()
    refused(
        committed,
        queue,
        refill_request,
        "Refill is not available for this service",
        user=customer,
        order_id=completed.pk,
    )
    pending = place(customer, shop.service(refill=True), link=LINK, quantity="100")
    refused(
        committed,
        queue,
        refill_request,
        "Refill is available only for completed orders",
        user=customer,
        order_id=pending.pk,
    )


def test_refill_rejected_by_the_provider(completed, customer, committed, simulator):
    refill = committed(refill_request, user=customer, order_id=completed.pk)
    simulator.set_fault("error", action="refill", text="Refill not allowed", count=1)
    assert refill_submit(refill_id=refill.pk) == "rejected"
    refill.refresh_from_db()
    assert (refill.state, refill.status, refill.note) == (
        RequestState.REJECTED,
        RefillStatus.REJECTED,
        "Refill not allowed",
    )
    # Asking again at once would be one more provider call per click: refused here.
    with pytest.raises(OrderError, match="refused a refill of this order recently"):
        committed(refill_request, user=customer, order_id=completed.pk)
    assert Refill.objects.filter(order=completed).count() == 1
    # After the cool-down the customer may ask again.
    Refill.objects.filter(pk=refill.pk).update(updated_at=timezone.now() - timedelta(hours=25))
    committed(refill_request, user=customer, order_id=completed.pk)


def test_refill_not_sent_is_retried(completed, customer, committed, queue, simulator):
    refill = committed(refill_request, user=customer, order_id=completed.pk)
    simulator.refuse()
    assert refill_submit(refill_id=refill.pk) == "retry"
    assert queue[-1] == ("refill", refill.pk, 15.0)
    simulator.recover()
    assert refill_submit(refill_id=refill.pk) == "sent"


def test_refill_with_garbage_reply_is_unknown(completed, customer, committed, simulator):
    refill = committed(refill_request, user=customer, order_id=completed.pk)
    simulator.set_fault("http502_html", action="refill")
    assert refill_submit(refill_id=refill.pk) == "unknown"
    assert Refill.objects.get(pk=refill.pk).state == RequestState.UNKNOWN


def test_sweeper_requeues_lost_refill_messages(completed, customer, committed, queue):
    refill = committed(refill_request, user=customer, order_id=completed.pk)
    Refill.objects.filter(pk=refill.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    queue.clear()
    assert orders_sweep()["refills"] == 1
    assert queue.ids("refill") == [refill.pk]


# --- Cancel ----------------------------------------------------------------------------------
def test_queued_order_is_canceled_here_and_refunded(customer, shop, place, committed, queue, simulator):
    fund(customer)
    order = place(customer, shop.service(cancel=True), link=LINK, quantity="100")
    balance = ledger(customer)[0]
    assert committed(cancel_request, user=customer, order_id=order.pk) is None
    order.refresh_from_db()
    assert (order.state, order.status) == (State.CANCELED, Status.CANCELED)
    assert ledger(customer)[0] == balance + order.charge
    assert order_submit(order_id=order.pk) == "skipped"
    assert simulator.adds_total() == 0
    assert ledger_audit() == []


def test_sent_order_cancel_is_forwarded_and_refunded_when_the_provider_cancels(
    customer, shop, place, committed, queue, simulator
):
    fund(customer)
    order = place(customer, shop.service(cancel=True), link=LINK, quantity="100")
    order_submit(order_id=order.pk)
    request = committed(cancel_request, user=customer, order_id=order.pk)
    assert request is not None and queue.ids("cancel") == [request.pk]
    refused(
        committed,
        queue,
        cancel_request,
        "A cancel request for this order is already pending",
        user=customer,
        order_id=order.pk,
    )
    assert cancel_submit(cancel_id=request.pk) == "sent"
    order.refresh_from_db()
    assert order.status == Status.PENDING  # the refund waits for the provider's Canceled
    assert not Entry.objects.filter(order_ref=order.pk, kind="refund").exists()
    simulator.advance_all()
    sync(order)
    assert order.status == Status.CANCELED
    assert list(Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True)) == [
        order.charge
    ]
    assert ledger_audit() == []


def test_cancel_rejected_by_the_provider(customer, shop, place, committed, simulator):
    fund(customer)
    order = place(customer, shop.service(cancel=True), link=LINK, quantity="100")
    order_submit(order_id=order.pk)
    request = committed(cancel_request, user=customer, order_id=order.pk)
    simulator.set_fault("error", action="cancel", text="Incorrect order ID", count=1)
    # A whole-request error (no per-order array) is a rejection as well.
    assert cancel_submit(cancel_id=request.pk) == "rejected"
    request.refresh_from_db()
    assert (request.state, request.note) == (RequestState.REJECTED, "Incorrect order ID")
    # A refused cancel is not forwarded again at every click.
    with pytest.raises(OrderError, match="refused to cancel this order recently"):
        committed(cancel_request, user=customer, order_id=order.pk)
    assert CancelRequest.objects.filter(order=order).count() == 1
    CancelRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(hours=25))
    assert committed(cancel_request, user=customer, order_id=order.pk) is not None


def test_cancel_is_refused_outside_the_rules(completed, customer, other_customer, shop, place, committed, queue):
    refused(committed, queue, cancel_request, protocol.ERR_INCORRECT_ORDER, user=other_customer, order_id=completed.pk)
    refused(
        committed, queue, cancel_request, "This order can no longer be canceled", user=customer, order_id=completed.pk
    )
    fund(customer)
    no_cancel = place(customer, shop.service(cancel=False), link=LINK, quantity="100")
    refused(
        committed,
        queue,
        cancel_request,
        "Cancel is not available for this service",
        user=customer,
        order_id=no_cancel.pk,
    )
    unknown = place(customer, shop.service(cancel=True), link=LINK, quantity="100")
    Order.objects.filter(pk=unknown.pk).update(state=State.UNKNOWN)
    refused(
        committed, queue, cancel_request, "This order cannot be canceled right now", user=customer, order_id=unknown.pk
    )
