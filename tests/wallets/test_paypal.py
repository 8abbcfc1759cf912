"""PayPal Checkout against the local PayPal simulator: orders, capture on return, verified webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client, RequestFactory

from simulators.paypal import PayPalSimulator
from tests.wallets.factories import BonusTierFactory
from tests.wallets.test_concurrency import run_together
from wallets.audit import ledger_audit
from wallets.gateways import paypal as paypal_module
from wallets.gateways.base import SignatureError
from wallets.gateways.paypal import PayPalGateway
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance
from wallets.services import WalletError, payment_start
from wallets.states import PaymentStatus

pytestmark = pytest.mark.django_db
D = Decimal
WEBHOOK = "/wallet/webhooks/paypal/"


@pytest.fixture
def sim(settings) -> Iterator[PayPalSimulator]:  # type: ignore[no-untyped-def]
    simulator = PayPalSimulator(auto_webhooks=False).start()
    settings.PAYPAL_API_URL = simulator.base_url
    settings.PAYPAL_CLIENT_ID = simulator.client_id
    settings.PAYPAL_CLIENT_SECRET = simulator.client_secret
    settings.PAYPAL_WEBHOOK_ID = simulator.webhook_id
    settings.PAYPAL_ALLOW_PRIVATE_URLS = True
    yield simulator
    simulator.stop()


def _start(user, amount: str = "150") -> tuple[Payment, str]:  # type: ignore[no-untyped-def]
    started = payment_start(user=user, gateway="paypal", amount=D(amount), return_url="http://testserver/wallet/")
    return started.payment, started.redirect_url


def _post(sim: PayPalSimulator, event: dict[str, Any], headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    headers = sim.sign(event) if headers is None else headers
    client = Client(enforce_csrf_checks=True)
    return client.post(WEBHOOK, data=json.dumps(event), content_type="application/json", headers=headers)


def _snapshot() -> tuple[list[tuple[int, str]], list[int]]:
    return list(Payment.objects.order_by("id").values_list("id", "status")), list(
        Entry.objects.order_by("id").values_list("id", flat=True)
    )


def _return(client: Client, sim: PayPalSimulator, order_id: str):  # type: ignore[no-untyped-def]
    """The buyer presses Pay on PayPal and comes back to the panel."""
    back = urlsplit(sim.approve(order_id))
    return client.get(f"{back.path}?{back.query}", follow=True)


# --- Starting ------------------------------------------------------------------------------


def test_start_creates_a_capture_order_for_the_payment_and_redirects_to_the_payer_action(sim, customer):
    payment, url = _start(customer, "150")
    order = sim.orders[payment.external_ref]
    unit = order["purchase_units"][0]
    assert url == f"{sim.base_url}/checkoutnow?token={payment.external_ref}"
    assert order["intent"] == "CAPTURE"
    assert unit["amount"] == {"currency_code": "USD", "value": "150.00"}
    assert unit["custom_id"] == str(payment.pk)
    assert order["_return_url"] == "http://testserver/wallet/?gateway=paypal"
    assert ("/v2/checkout/orders", f"payment-{payment.pk}-order") in sim.replies


def test_the_access_token_is_fetched_once_and_reused(sim, customer):
    _start(customer)
    _start(customer)
    assert sim.requests.count(("POST", "/v1/oauth2/token")) <= 1


def test_an_expired_token_is_replaced_once(sim, customer):
    payment, _ = _start(customer)
    sim.tokens.clear()  # PayPal forgot the cached token
    assert PayPalGateway().fetch(payment=payment).status == PaymentStatus.PENDING
    assert sim.requests.count(("POST", "/v1/oauth2/token")) == 2


def test_the_add_funds_page_lets_its_form_redirect_to_paypal(sim, customer_client):
    policy = customer_client.get("/wallet/").headers["Content-Security-Policy"]
    assert "form-action 'self'" in policy
    assert sim.base_url in policy
    assert "https://www.paypal.com" in policy


def test_a_create_timeout_tells_the_customer_to_retry_and_credits_nothing(sim, customer, monkeypatch):
    monkeypatch.setattr(paypal_module, "READ_TIMEOUT_SECONDS", 0.5)
    sim.hang_create = 2
    with pytest.raises(WalletError, match="try again"):
        _start(customer)
    payment = Payment.objects.get()
    assert payment.status == Payment.Status.FAILED
    assert wallet_balance(user=customer) == 0
    assert not Entry.objects.exists()


def test_a_gateway_error_on_create_fails_the_payment(sim, customer):
    sim.fail_next = 1
    with pytest.raises(WalletError):
        _start(customer)
    assert Payment.objects.get().status == Payment.Status.FAILED


# --- The buyer comes back ------------------------------------------------------------------


def test_returning_captures_and_credits_the_deposit_with_its_bonus(sim, customer, customer_client):
    BonusTierFactory(min_amount=D("100"), percent=D("10"))
    payment, _ = _start(customer, "150")
    response = _return(customer_client, sim, payment.external_ref)
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("165")
    assert sim.orders[payment.external_ref]["status"] == "COMPLETED"
    capture_path = f"/v2/checkout/orders/{payment.external_ref}/capture"
    assert (capture_path, f"payment-{payment.pk}-capture") in sim.replies


def test_returning_and_the_webhooks_credit_once(sim, customer, customer_client):
    payment, _ = _start(customer, "50")
    _return(customer_client, sim, payment.external_ref)
    assert _post(sim, sim.event("CHECKOUT.ORDER.APPROVED", payment.external_ref)).status_code == 200
    assert _post(sim, sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)).status_code == 200
    _return(customer_client, sim, payment.external_ref)
    assert wallet_balance(user=customer) == D("50")
    assert Entry.objects.filter(user=customer).count() == 1


def test_a_declined_capture_fails_the_payment_and_credits_nothing(sim, customer, customer_client):
    sim.decline_capture = True
    payment, _ = _start(customer, "50")
    _return(customer_client, sim, payment.external_ref)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert wallet_balance(user=customer) == 0


def test_returning_with_another_customers_order_captures_nothing(sim, customer, other_customer):
    payment, _ = _start(other_customer, "50")
    intruder = Client()
    intruder.force_login(customer)
    _return(intruder, sim, payment.external_ref)
    assert sim.orders[payment.external_ref]["status"] == "APPROVED"  # not captured by the intruder
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == 0
    assert wallet_balance(user=other_customer) == 0


def test_a_cancelled_checkout_credits_nothing(sim, customer, customer_client):
    payment, _ = _start(customer, "50")
    back = urlsplit(sim.cancel(payment.external_ref))
    customer_client.get(f"{back.path}?{back.query}")
    assert wallet_balance(user=customer) == 0
    assert ("POST", f"/v2/checkout/orders/{payment.external_ref}/capture") not in sim.requests


# --- Webhooks ------------------------------------------------------------------------------


def test_an_approved_order_webhook_captures_when_the_buyer_never_returns(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    assert _post(sim, sim.event("CHECKOUT.ORDER.APPROVED", payment.external_ref)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("50")


@pytest.mark.parametrize(
    "forge",
    [
        lambda headers: {**headers, "PAYPAL-TRANSMISSION-SIG": "Zm9yZ2Vk"},
        lambda headers: {k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"},
        lambda headers: {**headers, "PAYPAL-TRANSMISSION-ID": "not-sent-by-paypal"},
        lambda headers: {},
    ],
    ids=["wrong-signature", "missing-signature", "unknown-transmission", "no-headers"],
)
def test_an_unverified_webhook_is_400_and_credits_nothing(sim, customer, forge):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    before = _snapshot()
    assert _post(sim, event, forge(sim.sign(event))).status_code == 400
    assert _snapshot() == before
    assert wallet_balance(user=customer) == 0


def test_a_signature_for_another_event_body_is_400(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    headers = sim.sign(event)
    tampered = json.loads(json.dumps(event))
    tampered["resource"]["amount"]["value"] = "5000.00"
    assert _post(sim, tampered, headers).status_code == 400
    assert wallet_balance(user=customer) == 0


def test_a_replayed_completed_webhook_credits_once(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    headers = sim.sign(event)
    for _ in range(3):
        assert _post(sim, event, headers).status_code == 200
    assert wallet_balance(user=customer) == D("50")
    assert Entry.objects.count() == 1


def test_out_of_order_webhooks_leave_the_payment_paid_once(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    completed = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    approved = sim.event("CHECKOUT.ORDER.APPROVED", payment.external_ref)
    denied = sim.event("PAYMENT.CAPTURE.DENIED", payment.external_ref)
    for event in (completed, approved, denied, completed):
        assert _post(sim, event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("50")


def test_a_denied_capture_webhook_fails_the_payment(sim, customer):
    sim.decline_capture = True
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    assert _post(sim, sim.event("PAYMENT.CAPTURE.DENIED", payment.external_ref)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert wallet_balance(user=customer) == 0


def test_a_webhook_with_another_amount_credits_nothing(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref, amount="5.00")
    assert _post(sim, event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert "mismatch" in payment.note
    assert wallet_balance(user=customer) == 0


def test_a_webhook_for_an_order_the_panel_does_not_know_is_acknowledged_and_changes_nothing(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    event["resource"]["supplementary_data"]["related_ids"]["order_id"] = "5O190127TN364715T"
    event["resource"]["custom_id"] = "999999"
    before = _snapshot()
    assert _post(sim, event).status_code == 200
    assert _snapshot() == before


def test_a_webhook_naming_another_customers_payment_id_credits_only_that_order(sim, customer, other_customer):
    mine, _ = _start(customer, "50")
    theirs, _ = _start(other_customer, "60")
    sim.approve(mine.external_ref)
    sim.control({"action": "capture", "order_id": mine.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", mine.external_ref)
    event["resource"]["custom_id"] = str(theirs.pk)
    assert _post(sim, event).status_code == 200
    # The order id decides; an echoed id is only a fallback for payments without one.
    assert wallet_balance(user=other_customer) == 0
    assert wallet_balance(user=customer) == D("50")


@pytest.mark.parametrize(
    "event_type", ["PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED", "CUSTOMER.DISPUTE.CREATED"]
)
def test_money_going_back_is_read_as_a_refunded_report_with_its_amount(sim, customer, event_type):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event(event_type, payment.external_ref, amount="20.00")
    request = RequestFactory().post(
        WEBHOOK, data=json.dumps(event), content_type="application/json", headers=sim.sign(event)
    )
    notification = PayPalGateway().verify_notification(request)
    assert notification.reference == payment.external_ref
    assert notification.report is not None
    assert notification.report.status == PaymentStatus.REFUNDED
    assert notification.report.amount == D("20.00")
    assert notification.report.currency == "USD"


def test_verification_needs_the_configured_webhook_id(sim, customer, settings):
    payment, _ = _start(customer, "50")
    event = sim.event("CHECKOUT.ORDER.APPROVED", payment.external_ref)
    settings.PAYPAL_WEBHOOK_ID = "another-webhook"
    request = RequestFactory().post(
        WEBHOOK, data=json.dumps(event), content_type="application/json", headers=sim.sign(event)
    )
    with pytest.raises(SignatureError):
        PayPalGateway().verify_notification(request)


def test_fetch_reads_the_order_state(sim, customer, customer_client):
    payment, _ = _start(customer, "50")
    assert PayPalGateway().fetch(payment=payment).status == PaymentStatus.PENDING
    _return(customer_client, sim, payment.external_ref)
    report = PayPalGateway().fetch(payment=payment)
    assert (report.status, report.amount, report.currency) == (PaymentStatus.PAID, D("50.00"), "USD")


@pytest.mark.django_db(transaction=True)
def test_the_simulator_delivers_signed_webhooks_to_the_panel(sim, customer, live_server, settings):
    sim.webhook_url = f"{live_server.url}{WEBHOOK}"
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    assert sim.control(
        {"action": "send", "event_type": "PAYMENT.CAPTURE.COMPLETED", "order_id": payment.external_ref, "times": 2}
    ) == {"statuses": [200, 200]}
    assert wallet_balance(user=customer) == D("50")


# --- Races ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_webhook_credit_once(sim, customer):
    BonusTierFactory(min_amount=D("40"), percent=D("10"))
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref)
    sim.control({"action": "capture", "order_id": payment.external_ref})
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    headers = sim.sign(event)
    statuses = run_together(20, lambda i: _post(sim, event, headers).status_code)
    assert statuses == [200] * 20
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("55")
    assert Entry.objects.filter(user=customer).count() == 2  # the deposit and its bonus


def test_a_refund_webhook_takes_the_deposit_back_once(sim, customer, customer_client):
    payment, _ = _start(customer, "50")
    _return(customer_client, sim, payment.external_ref)
    before = wallet_balance(user=customer)
    event = sim.event("PAYMENT.CAPTURE.REFUNDED", payment.external_ref, amount="50.00")
    assert _post(sim, event).status_code == 200
    assert _post(sim, event).status_code == 200  # a replay moves nothing more
    payment.refresh_from_db()
    reversals = list(Entry.objects.filter(payment=payment, kind="reversal").values_list("amount", "owed"))
    assert len(reversals) == 1 and reversals[0][0] == Decimal("-50.00000")
    assert wallet_balance(user=customer) == before - Decimal("50")
    assert ledger_audit() == []
