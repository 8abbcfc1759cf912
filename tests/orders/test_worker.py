"""The whole flow through a real Celery worker on a real broker (Redis) and PostgreSQL,
against the provider simulator: placing enqueues on commit, the worker submits, beat's
dispatch task fans status sync out into chunk tasks, refunds land in the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings as django_settings
from django.db import connections

from catalog.models import PanelSettings
from catalog.services import panel_settings_get
from kernel.money import refund_for_remains
from orders.models import Order, State, Status
from orders.services import order_place
from orders.tasks import order_submit_task, orders_sweep_task, orders_sync_dispatch_task
from providers.models import ProviderCall
from tests.conftest import IN_CI
from tests.orders.factories import fund
from wallets.audit import ledger_audit
from wallets.models import Entry

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LINK = "https://instagram.com/p/worker"

TYPE_FIELDS: dict[str, dict[str, str]] = {
    "Default": {"quantity": "100"},
    "Package": {},
    "SEO": {"quantity": "100", "keywords": "shoes\nboots"},
    "Custom Comments": {"comments": "a\nb\nc"},
    "Custom Comments Package": {"comments": "a\nb"},
    "Mentions": {"quantity": "100", "usernames": "u1\nu2"},
    "Mentions with Hashtags": {"quantity": "100", "usernames": "u1", "hashtags": "#a"},
    "Mentions Custom List": {"usernames": "u1\nu2\nu3"},
    "Mentions Hashtag": {"quantity": "100", "hashtag": "#tag"},
    "Mentions User Followers": {"quantity": "100", "username": "bob"},
    "Mentions Media Likers": {"quantity": "100", "media": "https://instagram.com/p/media"},
    "Comment Likes": {"quantity": "100", "username": "bob"},
    "Poll": {"quantity": "100", "answer_number": "2"},
    "Comment Replies": {"username": "bob", "comments": "x\ny"},
    "Invites from Groups": {"quantity": "100", "groups": "g1\ng2"},
    "Subscriptions": {"min": "100", "max": "200", "delay": "30", "posts": "5"},
    "Web Traffic": {"quantity": "100", "country": "US", "device": "1", "type_of_traffic": "2"},
}


def _close_connections(**kwargs: Any) -> None:
    # Each worker thread keeps its own connection; close it so the test database can be
    # flushed and dropped.
    connections.close_all()


@pytest.fixture(scope="module")
def worker(django_db_blocker: Any) -> Iterator[Any]:
    if not django_settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")):
        if IN_CI:
            pytest.fail("required in CI: a Redis or RabbitMQ broker (set CELERY_BROKER_URL)")
        pytest.skip("needs a Redis or RabbitMQ broker (set CELERY_BROKER_URL)")
    from smmpanel.celery import app

    app.control.purge()
    task_postrun.connect(_close_connections, weak=False)
    try:
        # The worker is a real one on the test database: starting it runs Django's checks,
        # which read the panel configuration (allauth's e-mail verification mode).
        with (
            django_db_blocker.unblock(),
            start_worker(app, pool="threads", concurrency=8, perform_ping_check=False, shutdown_timeout=30) as running,
        ):
            yield running
    finally:
        task_postrun.disconnect(_close_connections)
        app.control.purge()


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def states(*orders: Order) -> set[str]:
    return set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("state", flat=True))


def refund_of(order: Order) -> Decimal:
    amounts = Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True)
    return sum(amounts, Decimal("0"))


def place(user: Any, service: Any, **fields: Any) -> Order:
    return order_place(user=user, service_id=service.pk, fields=fields)


def test_every_type_lives_to_completed_partial_or_canceled_with_the_right_refund(
    worker, customer, shop, simulator, settings
):
    fund(customer, "1000")
    orders: list[tuple[Order, str]] = []
    for type_name, fields in [*TYPE_FIELDS.items(), ("Default", {"quantity": "100", "runs": "3", "interval": "10"})]:
        service = shop.service(type=type_name, min=1, max=10000, dripfeed="runs" in fields, allow_duplicate_link=True)
        for n, outcome in enumerate(("Completed", "Partial", "Canceled")):
            where = {"username": f"user{service.pk}x{n}"} if type_name == "Subscriptions" else {"link": f"{LINK}/{n}"}
            orders.append((place(customer, service, **fields, **where), outcome))
    everything = [o for o, _ in orders]
    wait_for("every order sent", lambda: states(*everything) == {State.SENT})
    for order, outcome in orders:
        order.refresh_from_db()
        simulator.force_status(int(order.provider_order_id), outcome, remains=order.quantity // 2)
    orders_sync_dispatch_task.delay()
    wait_for(
        "every order finished",
        lambda: (
            set(Order.objects.filter(pk__in=[o.pk for o in everything]).values_list("status", flat=True))
            <= {Status.COMPLETED, Status.PARTIAL, Status.CANCELED}
        ),
    )
    for order, outcome in orders:
        order.refresh_from_db()
        assert order.status == outcome, order.service_type
        expected = {
            "Completed": Decimal("0"),
            "Partial": refund_for_remains(charge=order.charge, remains=order.quantity // 2, quantity=order.quantity),
            "Canceled": order.charge,
        }[outcome]
        assert refund_of(order) == expected, (order.service_type, outcome)
    drip = Order.objects.filter(runs=3).first()
    assert drip is not None and drip.quantity == 300
    assert simulator.adds_total() == len(orders)
    assert ledger_audit() == []


def test_the_same_submit_delivered_three_times_adds_once(worker, customer, shop, simulator):
    fund(customer)
    order = place(customer, shop.service(), link=LINK, quantity="100")  # the first message, on commit
    order_submit_task.delay(order_id=order.pk)
    order_submit_task.delay(order_id=order.pk)
    wait_for("sent", lambda: states(order) == {State.SENT})
    time.sleep(0.5)  # let the duplicates run too
    assert simulator.adds_total() == 1
    assert Order.objects.get(pk=order.pk).attempts == 1


def test_add_accepted_then_no_answer_is_unknown_and_never_refunded(worker, customer, shop, simulator, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    fund(customer)
    simulator.set_fault("hang_after_add", hang_seconds=2)
    order = place(customer, shop.service(), link=LINK, quantity="100")
    wait_for("unknown", lambda: states(order) == {State.UNKNOWN})
    simulator.clear_fault()
    orders_sweep_task.delay()
    order_submit_task.delay(order_id=order.pk)
    time.sleep(0.5)
    assert states(order) == {State.UNKNOWN}
    assert simulator.adds_total() == 1
    assert refund_of(order) == 0
    assert ledger_audit() == []


def test_connection_refused_then_up_is_submitted_once_after_retries(worker, customer, shop, simulator, settings):
    settings.ORDERS_RETRY_BASE_SECONDS = 1
    fund(customer)
    simulator.refuse()
    order = place(customer, shop.service(), link=LINK, quantity="100")
    # `attempts` counts an attempt when it starts: wait until the second one is over too.
    wait_for(
        "two failed attempts",
        lambda: (o := Order.objects.get(pk=order.pk)).attempts >= 2 and o.state != State.SENDING,
        timeout=15,
    )
    assert states(order) == {State.QUEUED}
    simulator.recover()
    wait_for("sent", lambda: states(order) == {State.SENT}, timeout=15)
    assert simulator.adds_total() == 1
    assert ProviderCall.objects.filter(order_ref=order.pk, outcome="not_sent").count() >= 2


def test_garbage_after_add_is_unknown_and_garbage_status_changes_nothing(worker, customer, shop, simulator, settings):
    settings.ORDERS_SYNC_MIN_INTERVAL_SECONDS = 0
    # Half the sends here fail on purpose, which would demote the only route (a failure
    # share of 50 percent): this test is about garbage replies, not about routing.
    PanelSettings.objects.filter(pk=panel_settings_get().pk).update(route_failure_percent=100)
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    for n, fault in enumerate(["http502_html", "http200_html", "truncated_json", "empty_object"], start=1):
        simulator.set_fault(fault, action="add", count=1)
        lost = place(customer, service, link=LINK, quantity="100")
        wait_for(f"unknown after {fault}", lambda lost=lost: states(lost) == {State.UNKNOWN})
        good = place(customer, service, link=LINK, quantity="100")
        wait_for("sent", lambda good=good: states(good) == {State.SENT})
        assert simulator.adds_total() == 2 * n and refund_of(lost) == 0

        good.refresh_from_db()
        simulator.force_status(int(good.provider_order_id), "Canceled")
        calls = ProviderCall.objects.filter(action="status").count()
        simulator.set_fault(fault, action="status", count=1)
        orders_sync_dispatch_task.delay()
        wait_for("a status call", lambda calls=calls: ProviderCall.objects.filter(action="status").count() > calls)
        time.sleep(0.2)
        assert Order.objects.get(pk=good.pk).status == Status.PENDING and refund_of(good) == 0, fault
        orders_sync_dispatch_task.delay()
        wait_for("canceled", lambda good=good: Order.objects.get(pk=good.pk).status == Status.CANCELED)
        assert refund_of(good) == good.charge
    assert ledger_audit() == []


def test_definitive_rejection_is_refunded_once(worker, customer, shop, simulator):
    fund(customer)
    simulator.set_fault("error", action="add", text="Incorrect link")
    order = place(customer, shop.service(), link=LINK, quantity="100")
    wait_for("canceled", lambda: Order.objects.get(pk=order.pk).status == Status.CANCELED)
    order_submit_task.delay(order_id=order.pk)
    order_submit_task.delay(order_id=order.pk)
    time.sleep(0.5)
    assert Entry.objects.filter(order_ref=order.pk, kind="refund").count() == 1
    assert refund_of(order) == order.charge
    assert Order.objects.get(pk=order.pk).customer_note == "Incorrect link"
    assert ledger_audit() == []


def test_two_routes_place_with_the_fallback(worker, customer, shop, make_simulator):
    first, second = make_simulator(), make_simulator()
    first.set_fault("error", action="add", text="Incorrect service ID")
    fund(customer)
    order = place(customer, shop.service(sims=[first, second]), link=LINK, quantity="100")
    wait_for("sent", lambda: states(order) == {State.SENT})
    order.refresh_from_db()
    assert order.provider == shop.provider(second)
    assert (first.adds_total(), second.adds_total()) == (0, 1)
    assert refund_of(order) == 0


def test_a_sync_batch_of_100_through_the_workers(worker, customer, shop, simulator, settings):
    settings.ORDERS_SYNC_MIN_INTERVAL_SECONDS = 0
    fund(customer, "1000")
    service = shop.service(allow_duplicate_link=True)
    orders = [place(customer, service, link=f"{LINK}/{i}", quantity="997") for i in range(100)]
    wait_for("all sent", lambda: states(*orders) == {State.SENT})
    expected: dict[int, tuple[str, Decimal]] = {}
    for i, order in enumerate(orders):
        order.refresh_from_db()
        pid = int(order.provider_order_id)
        kind = i % 5
        if kind == 0:
            simulator.force_status(pid, "Completed")
            expected[order.pk] = (Status.COMPLETED, Decimal("0"))
        elif kind == 1:
            simulator.force_status(pid, "Partial", remains=i)
            expected[order.pk] = (Status.PARTIAL, refund_for_remains(charge=order.charge, remains=i, quantity=997))
        elif kind == 2:
            simulator.force_status(pid, "Canceled")
            expected[order.pk] = (Status.CANCELED, order.charge)
        elif kind == 3:
            simulator.force_status(pid, "In progress", remains=400)
            expected[order.pk] = (Status.IN_PROGRESS, Decimal("0"))
        else:
            Order.objects.filter(pk=order.pk).update(provider_order_id=f"9{order.pk:07d}")
            expected[order.pk] = (Status.PENDING, Decimal("0"))
    orders_sync_dispatch_task.delay()
    wait_for("synced", lambda: Order.objects.filter(pk__in=expected, last_checked_at__isnull=True).count() == 0)
    wait_for("statuses", lambda: all(Order.objects.get(pk=pk).status == s for pk, (s, _) in expected.items()))
    wait_for("flags", lambda: Order.objects.filter(sync_flag=True).count() == 20)
    for pk, (_status, refund) in expected.items():
        assert refund_of(Order(pk=pk)) == refund
    entries = Entry.objects.count()
    calls = ProviderCall.objects.filter(action="status").count()
    orders_sync_dispatch_task.delay()
    wait_for("a second pass", lambda: ProviderCall.objects.filter(action="status").count() > calls)
    time.sleep(0.3)
    assert Entry.objects.count() == entries
    assert ledger_audit() == []
