"""The orders app writes an outbox row with every change of an order's status, remains or start
count and of a refill's status, in the same transaction, and only inserts it: a receiver that
hangs cannot slow status sync."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import transaction

from orders.models import Order, Refill, RefillStatus, Status
from orders.services import order_submit, order_sync_chunk, order_transition, refill_request, refill_sync_chunk
from tests.orders.factories import Shop, fund
from webhooks.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db: Any, simulator: Any) -> Shop:
    return Shop(simulator=simulator)


@pytest.fixture
def sent_order(customer, shop, django_capture_on_commit_callbacks, monkeypatch):
    from orders import services as order_services

    monkeypatch.setattr(order_services.outbox, "enqueue_submit", lambda **kw: None)
    fund(customer, "100")
    service = shop.service(allow_duplicate_link=True, refill=True)
    with django_capture_on_commit_callbacks(execute=True):
        order = order_services.order_place(
            user=customer, service_id=service.pk, fields={"link": "https://instagram.com/p/x", "quantity": "1000"}
        )
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    return order


def sync(order: Order) -> dict[str, int]:
    assert order.provider_id is not None
    return order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])


def events(order: Order) -> list[dict[str, Any]]:
    return [e.payload["data"] for e in Event.objects.filter(order_ref=order.pk).order_by("pk")]


def test_status_remains_and_start_count_changes_are_recorded(customer, endpoint, sent_order, simulator, sent):
    order = sent_order
    assert Event.objects.count() == 0  # submission moves the state only: nothing to tell
    simulator.force_status(int(order.provider_order_id), "In progress", remains=600, start_count=5000)
    sync(order)
    simulator.force_status(int(order.provider_order_id), "In progress", remains=300, start_count=5000)
    sync(order)
    sync(order)  # the same answer again: no event
    simulator.force_status(int(order.provider_order_id), "Partial", remains=100)
    sync(order)
    got = events(order)
    assert [(e["status"], e["remains"], e["start_count"], e["changed"]) for e in got] == [
        ("In progress", "600", "5000", ["status", "remains", "start_count"]),
        ("In progress", "300", "5000", ["remains"]),
        ("Partial", "100", "5000", ["status", "remains"]),
    ]
    assert got[0]["order"] == order.pk and got[0]["currency"] == "USD" and got[0]["charge"] == f"{order.charge:f}"
    assert len(set(Event.objects.values_list("event_id", flat=True))) == 3


def test_the_outbox_row_rolls_back_with_the_change(customer, endpoint, sent_order):
    order = sent_order
    with pytest.raises(RuntimeError), transaction.atomic():
        order_transition(order=order, status=Status.IN_PROGRESS, reason="test")
        assert Event.objects.count() == 1
        raise RuntimeError("the change is rolled back")
    assert Event.objects.count() == 0
    assert Order.objects.get(pk=order.pk).status == Status.PENDING


def test_a_refill_status_change_is_recorded(customer, endpoint, sent_order, simulator, sent, monkeypatch):
    from orders import services as order_services
    from orders.services import refill_submit

    order = sent_order
    simulator.force_status(int(order.provider_order_id), "Completed")
    sync(order)
    Event.objects.all().delete()
    monkeypatch.setattr(order_services.outbox, "enqueue_refill", lambda **kw: None)
    refill = refill_request(user=customer, order_id=order.pk)
    refill_submit(refill_id=refill.pk)
    refill.refresh_from_db()
    simulator.force_refill_status(int(refill.provider_refill_id), "Completed")
    refill_sync_chunk(provider_id=refill.provider_id, refill_ids=[refill.pk])
    assert Refill.objects.get(pk=refill.pk).status == RefillStatus.COMPLETED
    (event,) = Event.objects.all()
    assert event.type == "refill.updated" and event.order_ref == order.pk
    assert event.payload["data"] == {"refill": refill.pk, "order": order.pk, "status": "Completed"}


def test_a_hanging_receiver_does_not_slow_status_sync(
    customer, endpoint, receiver, sent_order, simulator, settings, django_capture_on_commit_callbacks
):
    """The receiver hangs every request for 20 s. Sync only inserts the outbox row and
    publishes a message after commit (to the real broker in CI): it never waits on the receiver."""
    settings.WEBHOOKS_READ_TIMEOUT = 30.0
    receiver.hang_rate, receiver.hang_seconds = 1.0, 20.0
    order = sent_order
    simulator.force_status(int(order.provider_order_id), "In progress", remains=500, start_count=10)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        sync(order)
    elapsed = time.monotonic() - started
    assert Event.objects.filter(order_ref=order.pk).count() == 1
    assert receiver.deliveries == []  # nothing was sent from the sync itself
    assert elapsed < 10  # far below the receiver's 20 s hang (the real figure is milliseconds)
