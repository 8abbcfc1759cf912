from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from kernel import protocol
from orders import services
from orders.models import Order, State, Status
from orders.services import order_submit, order_transition, orders_sweep
from providers.client import ProviderClient
from providers.models import Provider, ProviderCall
from tests.orders.factories import fund, ledger
from wallets.audit import ledger_audit
from wallets.models import Entry
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/abc"


@pytest.fixture
def order(customer, shop, place):
    fund(customer, "10")
    return place(customer, shop.service(), link=LINK, quantity="1000")


def adds(sim: Any, order: Order) -> int:
    return sim.add_count(int(order.external_service_id), order.link, order.quantity)


def refunds(order: Order) -> list[Decimal]:
    return list(Entry.objects.filter(order_ref=order.pk, kind="refund").values_list("amount", flat=True))


def test_accepted_order_is_sent_once_with_its_provider_id(order, simulator):
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert order.state == State.SENT and order.status == Status.PENDING
    assert simulator.order(int(order.provider_order_id))["link"] == LINK
    assert adds(simulator, order) == 1
    assert order.attempts == 1 and order.sent_at is not None
    assert [(e.from_state, e.to_state) for e in order.events.all()] == [
        ("", State.QUEUED),
        (State.QUEUED, State.SENDING),
        (State.SENDING, State.SENT),
    ]
    call = ProviderCall.objects.get(order_ref=order.pk)
    assert (call.action, call.outcome) == ("add", "ok")
    assert ledger_audit() == []


def test_the_same_submit_three_times_adds_once(order, simulator):
    results = [order_submit(order_id=order.pk) for _ in range(3)]
    assert results == ["sent", "skipped", "skipped"]
    assert adds(simulator, order) == 1
    assert simulator.adds_total() == 1


def test_fields_of_the_type_reach_the_provider(customer, shop, place, simulator):
    fund(customer)
    service = shop.service(type="Custom Comments", min=1)
    order = place(customer, service, link=LINK, comments="first\nsecond")
    assert order_submit(order_id=order.pk) == "sent"
    upstream = simulator.order(int(Order.objects.get(pk=order.pk).provider_order_id))
    assert upstream["quantity"] == 2
    assert upstream["fields"]["comments"] == "first\nsecond"


def test_dripfeed_runs_reach_the_provider(customer, shop, place, simulator):
    fund(customer)
    order = place(customer, shop.service(dripfeed=True), link=LINK, quantity="100", runs="3", interval="10")
    order_submit(order_id=order.pk)
    upstream = simulator.order(int(Order.objects.get(pk=order.pk).provider_order_id))
    assert (upstream["quantity"], upstream["runs"], upstream["interval"]) == (300, 3, 10)


def test_definitive_rejection_cancels_and_refunds_once(order, simulator, customer):
    balance_before = ledger(customer)[0]
    simulator.set_fault("error", action="add", text="Incorrect link", count=1)
    assert order_submit(order_id=order.pk) == "rejected"
    order.refresh_from_db()
    assert (order.state, order.status) == (State.REJECTED, Status.CANCELED)
    assert order.customer_note == "Incorrect link"
    assert refunds(order) == [order.charge]
    assert ledger(customer)[0] == balance_before + order.charge
    assert order_submit(order_id=order.pk) == "skipped"
    assert refunds(order) == [order.charge]
    assert ledger_audit() == []


def test_raw_translation_key_rejection_is_understood(order, simulator):
    simulator.set_fault("error", action="add", text="neworder.error.link", count=1)
    order_submit(order_id=order.pk)
    order.refresh_from_db()
    assert order.customer_note == protocol.ERR_INCORRECT_LINK


def test_a_refused_api_key_pauses_the_provider_and_keeps_the_money(order, simulator, queue, customer):
    balance_before = ledger(customer)
    simulator.set_fault("error", action="add", text=protocol.ERR_INVALID_KEY)
    assert order_submit(order_id=order.pk) == "paused"
    order.refresh_from_db()
    assert (order.state, order.status) == (State.QUEUED, Status.PENDING)
    assert Provider.objects.get(pk=order.provider_id).paused_reason == protocol.ERR_INVALID_KEY
    assert ledger(customer) == balance_before
    assert queue.ids() == [order.pk, order.pk]
    # While the only provider is paused the order waits, money kept, nothing sent.
    simulator.clear_fault()
    assert order_submit(order_id=order.pk) == "waiting"
    order.refresh_from_db()
    assert order.state == State.QUEUED and order.next_attempt_at > timezone.now()
    assert adds(simulator, order) == 0
    Provider.objects.filter(pk=order.provider_id).update(paused_reason="")
    assert order_submit(order_id=order.pk) == "sent"


@pytest.mark.parametrize("text", ["Not enough funds on balance", "neworder.error.not_enough_funds"])
def test_an_order_the_provider_cannot_fund_waits_alone_and_can_be_canceled(
    customer, other_customer, shop, place, simulator, queue, committed, mailoutbox, settings, text
):
    settings.ADMINS = [("Staff", "staff@example.com")]
    cache.clear()  # the once-an-hour alert marker of an earlier run
    fund(customer, "100")
    fund(other_customer, "100")
    service = shop.service(price="1.300000")
    big = place(customer, service, link=LINK, quantity="10000")
    # Our balance at the provider pays for small orders only: the big one is refused.
    simulator.set_balance("test-key", "5")
    assert order_submit(order_id=big.pk) == "waiting_funds"
    big.refresh_from_db()
    assert (big.state, big.status) == (State.QUEUED, Status.PENDING)
    assert big.next_attempt_at > timezone.now() + timedelta(seconds=200)
    assert "cancel" in big.customer_note
    provider = Provider.objects.get(pk=big.provider_id)
    assert provider.paused_reason == "" and provider.is_usable  # nobody else is stopped
    assert [m.subject.endswith(f"Provider {provider.name}: not enough funds") for m in mailoutbox] == [True]
    # Another customer's order goes through at once.
    small = place(other_customer, service, link=LINK + "/2", quantity="100")
    assert order_submit(order_id=small.pk) == "sent"
    # A second refusal waits longer and does not mail staff again within the hour.
    Order.objects.filter(pk=big.pk).update(next_attempt_at=None)
    assert order_submit(order_id=big.pk) == "waiting_funds"
    assert len(mailoutbox) == 1
    # The customer takes the money back, though the service has no cancel.
    before = wallet_balance(user=customer)
    assert committed(services.cancel_request, user=customer, order_id=big.pk) is None
    big.refresh_from_db()
    assert (big.status, big.state) == (Status.CANCELED, State.CANCELED)
    assert wallet_balance(user=customer) == before + big.charge
    assert simulator.adds_total() == 1 and ledger_audit() == []


def test_rejection_falls_back_to_the_next_route(customer, shop, place, make_simulator, queue):
    first, second = make_simulator(), make_simulator()
    fund(customer)
    service = shop.service(sims=[first, second])
    order = place(customer, service, link=LINK, quantity="100")
    first.set_fault("error", action="add", text="Incorrect service ID")
    assert order_submit(order_id=order.pk) == "next_route"
    order.refresh_from_db()
    assert order.state == State.QUEUED and len(order.routes_tried) == 1
    assert queue.ids() == [order.pk, order.pk]
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert order.provider == shop.provider(second)
    assert (first.adds_total(), second.adds_total()) == (0, 1)
    assert refunds(order) == []


def test_all_routes_rejecting_cancels_with_the_last_reason(customer, shop, place, make_simulator):
    first, second = make_simulator(), make_simulator()
    fund(customer)
    order = place(customer, shop.service(sims=[first, second]), link=LINK, quantity="100")
    first.set_fault("error", action="add", text="Incorrect service ID")
    second.set_fault("error", action="add", text="Quantity less than minimal 500")
    assert [order_submit(order_id=order.pk) for _ in range(2)] == ["next_route", "rejected"]
    order.refresh_from_db()
    assert (order.status, order.customer_note) == (Status.CANCELED, "Quantity less than minimal 500")
    assert refunds(order) == [order.charge]


def test_no_route_left_cancels_and_refunds(order):
    order.service.routes.update(is_enabled=False)
    assert order_submit(order_id=order.pk) == "rejected"
    order.refresh_from_db()
    assert (order.state, order.status) == (State.REJECTED, Status.CANCELED)
    assert order.customer_note == "No active providers for this service"
    assert refunds(order) == [order.charge]


@pytest.mark.parametrize("fault", ["refuse", "http429"])
def test_never_sent_goes_back_to_queued_with_backoff_then_is_sent_once(order, simulator, queue, fault):
    if fault == "refuse":
        simulator.refuse()
    else:
        simulator.set_fault("http429", action="add")
    assert order_submit(order_id=order.pk) == "retry"
    order.refresh_from_db()
    assert order.state == State.QUEUED and order.attempts == 1
    assert queue[-1] == ("submit", order.pk, 15.0)
    assert timedelta(seconds=10) < order.next_attempt_at - timezone.now() <= timedelta(seconds=15)
    assert order_submit(order_id=order.pk) == "retry"
    assert queue[-1] == ("submit", order.pk, 30.0)
    simulator.clear_fault()
    assert order_submit(order_id=order.pk) == "sent"
    assert adds(simulator, order) == 1
    assert refunds(order) == []


@pytest.mark.parametrize("fault", ["http502_html", "http200_html", "truncated_json", "empty_object", "close"])
def test_garbage_after_add_leaves_the_order_unknown_and_unrefunded(order, simulator, customer, fault):
    balance = ledger(customer)
    simulator.set_fault(fault, action="add")
    assert order_submit(order_id=order.pk) == "unknown"
    order.refresh_from_db()
    assert (order.state, order.status) == (State.UNKNOWN, Status.PENDING)
    assert order.provider_order_id is None and order.sync_note
    assert adds(simulator, order) == 1  # the provider did buy it
    assert ledger(customer) == balance
    simulator.clear_fault()
    assert order_submit(order_id=order.pk) == "skipped"
    assert orders_sweep()["requeued"] == 0
    assert adds(simulator, order) == 1
    assert ledger_audit() == []


def test_no_answer_after_add_is_unknown(order, simulator, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    simulator.set_fault("hang_after_add", hang_seconds=2)
    assert order_submit(order_id=order.pk) == "unknown"
    order.refresh_from_db()
    assert order.state == State.UNKNOWN
    assert adds(simulator, order) == 1
    assert refunds(order) == []


def test_an_unexpected_error_while_sending_is_unknown(order, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(ProviderClient, "add", explode)
    assert order_submit(order_id=order.pk) == "unknown"
    assert Order.objects.get(pk=order.pk).state == State.UNKNOWN


def test_a_provider_order_id_already_taken_is_unknown(customer, shop, place, monkeypatch):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    first = place(customer, service, link=LINK, quantity="100")
    second = place(customer, service, link=LINK, quantity="100")
    monkeypatch.setattr(ProviderClient, "add", lambda self, **kw: "777")
    assert order_submit(order_id=first.pk) == "sent"
    assert order_submit(order_id=second.pk) == "unknown"
    second.refresh_from_db()
    assert second.state == State.UNKNOWN and "already used" in second.sync_note


# --- Sweeper ---------------------------------------------------------------------------------
def test_sweeper_reenqueues_due_queued_orders_once_per_lease(order, queue):
    queue.clear()
    assert orders_sweep()["requeued"] == 0  # younger than a minute: its own message is on the way
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert orders_sweep()["requeued"] == 1
    assert queue.ids() == [order.pk]
    assert orders_sweep()["requeued"] == 0  # leased
    later = timezone.now() + timedelta(minutes=6)
    assert orders_sweep(now=later)["requeued"] == 1


def test_sweeper_waits_for_the_backoff(order, queue):
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - timedelta(minutes=2), next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    assert orders_sweep()["requeued"] == 0


def test_sweeper_batch_is_bounded(customer, shop, place, queue):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    for _ in range(5):
        place(customer, service, link=LINK, quantity="10")
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    queue.clear()
    assert orders_sweep(batch=3)["requeued"] == 3
    assert orders_sweep(batch=3)["requeued"] == 2


def test_order_stuck_in_sending_becomes_unknown_and_a_late_answer_still_counts(order, settings):
    order_transition(order=order, state=State.SENDING, reason="test", changes={"sending_started_at": timezone.now()})
    assert orders_sweep()["unknown"] == 0
    later = timezone.now() + timedelta(seconds=settings.ORDERS_SENDING_TIMEOUT_SECONDS + 1)
    assert orders_sweep(now=later)["unknown"] == 1
    stale = Order.objects.get(pk=order.pk)
    assert stale.state == State.UNKNOWN
    # The worker was only slow: its answer arrives after the timeout.
    assert services.submission._submit_accepted(order=order, provider=order.provider, provider_order_id="42") == "sent"
    stale.refresh_from_db()
    assert (stale.state, stale.provider_order_id) == (State.SENT, "42")
