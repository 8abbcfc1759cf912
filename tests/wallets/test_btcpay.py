"""BTCPay Server: invoices against the local simulator, webhooks signed the way BTCPay signs them."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from simulators.btcpay import DEFAULT_KEY, DEFAULT_SECRET, DEFAULT_STORE, BTCPaySimulator
from tests.factories import UserFactory
from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.gateways.base import GatewayError
from wallets.gateways.btcpay import BTCPayGateway, signature_for
from wallets.models import Entry, GatewaySetting, Payment
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db
D = Decimal
WEBHOOK = "/wallet/webhooks/btcpay/"
ADD_FUNDS = "/wallet/add-funds/btcpay/"


@pytest.fixture
def btcpay_sim() -> Iterator[BTCPaySimulator]:
    sim = BTCPaySimulator().start()
    yield sim
    sim.stop()


@pytest.fixture
def btcpay_on(settings, btcpay_sim):  # type: ignore[no-untyped-def]
    settings.BTCPAY_URL = btcpay_sim.url
    settings.BTCPAY_STORE_ID = DEFAULT_STORE
    settings.BTCPAY_API_KEY = DEFAULT_KEY
    settings.BTCPAY_WEBHOOK_SECRET = DEFAULT_SECRET
    settings.BTCPAY_ALLOW_PRIVATE_URL = True  # the simulator listens on loopback
    settings.BTCPAY_TIMEOUT_SECONDS = 5
    return settings


def deposit(client: Client, amount: str = "100") -> tuple[Payment, str]:
    """The customer asks for a deposit; the panel answers with a redirect to the invoice."""
    response = client.post(ADD_FUNDS, {"amount": amount})
    assert response.status_code == 302, response.content
    payment = Payment.objects.get(gateway="btcpay")
    return payment, response["Location"]


def deliver_outbox(client: Client, sim: BTCPaySimulator) -> list[int]:
    """Post what the simulator would have sent to the panel's webhook, in its order."""
    statuses = []
    while sim.state.outbox:
        body, signature = sim.state.outbox.pop(0)
        statuses.append(post_event(client, body, signature).status_code)
    return statuses


def post_event(client: Client, body: bytes, signature: str | None) -> Any:
    headers = {} if signature is None else {"BTCPay-Sig": signature}
    return client.post(WEBHOOK, data=body, content_type="application/json", headers=headers)


def event(invoice_id: str, kind: str = "InvoiceSettled", *, order_id: str = "", store: str = DEFAULT_STORE) -> bytes:
    return json.dumps(
        {
            "deliveryId": f"d-{kind}",
            "webhookId": "w1",
            "isRedelivery": False,
            "type": kind,
            "timestamp": 1,
            "storeId": store,
            "invoiceId": invoice_id,
            "metadata": {"orderId": order_id},
        }
    ).encode()


def deposits(user: Any) -> list[tuple[str, Decimal]]:
    return sorted((e.kind, e.amount) for e in Entry.objects.filter(user=user))


# --- Configuration ------------------------------------------------------------------------


def test_the_gateway_is_configured_only_with_all_four_settings(btcpay_on):
    assert BTCPayGateway().configured()
    for name in ("BTCPAY_URL", "BTCPAY_STORE_ID", "BTCPAY_API_KEY", "BTCPAY_WEBHOOK_SECRET"):
        value = getattr(btcpay_on, name)
        setattr(btcpay_on, name, "")
        assert not BTCPayGateway().configured(), name
        setattr(btcpay_on, name, value)


def test_the_add_funds_page_shows_the_btcpay_card(btcpay_on, customer_client):
    response = customer_client.get("/wallet/")
    assert ADD_FUNDS.encode() in response.content


def test_the_add_funds_page_lets_its_form_redirect_to_the_btcpay_server(btcpay_on, btcpay_sim, customer_client):
    csp = customer_client.get("/wallet/")["Content-Security-Policy"]
    assert csp.endswith(f"form-action 'self' {btcpay_sim.url}")


def test_other_pages_keep_form_action_to_the_panel(btcpay_on, customer_client):
    assert customer_client.get("/wallet/transactions/")["Content-Security-Policy"].endswith("form-action 'self'")


def test_an_unconfigured_btcpay_takes_no_deposit(settings, customer_client):
    settings.BTCPAY_URL = ""
    assert customer_client.post(ADD_FUNDS, {"amount": "10"}).status_code == 404
    assert not Payment.objects.exists()


def test_the_webhook_answers_405_to_a_get(btcpay_on, client):
    assert client.get(WEBHOOK).status_code == 405


# --- Creating the invoice ---------------------------------------------------------------


def test_a_deposit_creates_an_invoice_and_sends_the_customer_to_its_checkout_link(
    btcpay_on, btcpay_sim, customer, customer_client
):
    payment, location = deposit(customer_client, "25")

    invoice = btcpay_sim.state.invoices[payment.external_ref]
    assert location == f"{btcpay_sim.url}/i/{invoice.id}"
    assert (invoice.amount, invoice.currency) == (D("25.00000"), "USD")
    assert invoice.metadata["orderId"] == str(payment.pk)
    assert invoice.checkout["redirectURL"].endswith("/wallet/?checkout=success")
    assert payment.status == Payment.Status.PENDING and payment.user == customer


def test_the_invoice_asks_for_the_amount_plus_the_fee(btcpay_on, btcpay_sim, customer_client):
    GatewaySetting.objects.create(code="btcpay", enabled=True, fee_percent=D("2"))
    payment, _ = deposit(customer_client, "50")
    assert btcpay_sim.state.invoices[payment.external_ref].amount == D("51.00000")


def test_a_create_timeout_tells_the_customer_to_retry_and_credits_nothing(
    btcpay_on, btcpay_sim, customer, customer_client
):
    btcpay_on.BTCPAY_TIMEOUT_SECONDS = 0.5
    btcpay_sim.state.fault, btcpay_sim.state.hang_seconds = "hang", 2

    response = customer_client.post(ADD_FUNDS, {"amount": "20"})

    assert response.status_code == 400
    assert b"try again" in response.content
    payment = Payment.objects.get(gateway="btcpay")
    assert (payment.status, payment.external_ref) == (Payment.Status.FAILED, "")
    assert wallet_balance(user=customer) == 0 and not Entry.objects.exists()


def test_a_server_error_on_create_fails_the_payment(btcpay_on, btcpay_sim, customer, customer_client):
    btcpay_sim.state.fault = "error"
    assert customer_client.post(ADD_FUNDS, {"amount": "20"}).status_code == 400
    assert Payment.objects.get().status == Payment.Status.FAILED
    assert not Entry.objects.exists()


def test_an_invoice_created_though_the_create_timed_out_credits_only_when_paid(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    # The server made the invoice but answered too late: the payment failed without a
    # reference, and the webhook finds it by our id in the invoice's metadata.
    btcpay_on.BTCPAY_TIMEOUT_SECONDS = 0.5
    btcpay_sim.state.fault, btcpay_sim.state.hang_seconds = "hang", 1
    customer_client.post(ADD_FUNDS, {"amount": "20"})
    btcpay_sim.state.fault = "none"
    payment = Payment.objects.get()
    (invoice,) = btcpay_sim.state.invoices.values()

    btcpay_sim.expire(invoice.id)
    deliver_outbox(client, btcpay_sim)
    assert wallet_balance(user=customer) == 0

    btcpay_sim.pay(invoice.id)
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and wallet_balance(user=customer) == D("20")


def test_the_gateway_refuses_an_address_the_outbound_guard_forbids(btcpay_on, customer, customer_client):
    btcpay_on.BTCPAY_ALLOW_PRIVATE_URL = False
    assert customer_client.post(ADD_FUNDS, {"amount": "20"}).status_code == 400
    assert Payment.objects.get().status == Payment.Status.FAILED


# --- Webhooks -----------------------------------------------------------------------------


def test_paying_the_invoice_credits_the_deposit_and_its_bonus(btcpay_on, btcpay_sim, customer, customer_client, client):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    payment, _ = deposit(customer_client, "100")

    btcpay_sim.pay(payment.external_ref)
    assert deliver_outbox(client, btcpay_sim) == [200, 200, 200]

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.credited == D("100")
    assert deposits(customer) == [("bonus", D("10")), ("deposit", D("100"))]


@pytest.mark.parametrize("signature", [None, "", "sha256=" + "0" * 64, "sha1=abc"])
def test_a_bad_or_missing_signature_is_refused_and_credits_nothing(
    btcpay_on, btcpay_sim, customer, customer_client, client, signature
):
    payment, _ = deposit(customer_client, "30")
    btcpay_sim.pay(payment.external_ref)
    body, _good = btcpay_sim.state.outbox[-1]

    assert post_event(client, body, signature).status_code == 400
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and wallet_balance(user=customer) == 0


def test_webhooks_signed_with_another_secret_are_refused(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "30")
    btcpay_sim.state.fault = "bad_signature"
    btcpay_sim.pay(payment.external_ref)
    assert deliver_outbox(client, btcpay_sim) == [400, 400, 400]
    assert wallet_balance(user=customer) == 0 and not Entry.objects.exists()


def test_a_signed_body_changed_in_transit_is_refused(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "30")
    btcpay_sim.pay(payment.external_ref)
    body, signature = btcpay_sim.state.outbox[-1]
    assert post_event(client, body.replace(b"InvoiceSettled", b"InvoiceSettled "), signature).status_code == 400
    assert wallet_balance(user=customer) == 0


def test_settled_twice_and_duplicate_deliveries_credit_once(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.state.fault = "duplicate"
    btcpay_sim.pay(payment.external_ref)
    statuses = deliver_outbox(client, btcpay_sim)
    assert statuses == [200] * 6
    body = event(payment.external_ref, order_id=str(payment.pk))
    assert post_event(client, body, signature_for(body, DEFAULT_SECRET)).status_code == 200

    assert deposits(customer) == [("deposit", D("40"))]


def test_an_expired_event_after_settled_does_not_take_the_credit_back(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.state.fault = "out_of_order"
    btcpay_sim.pay(payment.external_ref)
    deliver_outbox(client, btcpay_sim)  # Settled arrives first, then Processing, then ReceivedPayment
    stale = event(payment.external_ref, "InvoiceExpired", order_id=str(payment.pk))
    assert post_event(client, stale, signature_for(stale, DEFAULT_SECRET)).status_code == 200

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert deposits(customer) == [("deposit", D("40"))]


def test_a_forged_settled_event_is_read_back_and_credits_nothing(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    # Signed, but the invoice is still New: the state comes from the API, not the event.
    payment, _ = deposit(customer_client, "40")
    body = event(payment.external_ref, "InvoiceSettled", order_id=str(payment.pk))
    assert post_event(client, body, signature_for(body, DEFAULT_SECRET)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and wallet_balance(user=customer) == 0


def test_a_webhook_for_an_unknown_invoice_is_acknowledged_and_changes_nothing(btcpay_on, btcpay_sim, client):
    body = event("UNKNOWN123", order_id="")
    assert post_event(client, body, signature_for(body, DEFAULT_SECRET)).status_code == 200
    assert not Entry.objects.exists()


def test_a_webhook_from_another_store_changes_nothing(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref)
    body = event(payment.external_ref, order_id=str(payment.pk), store="someone-elses-store")
    assert post_event(client, body, signature_for(body, DEFAULT_SECRET)).status_code == 200
    assert wallet_balance(user=customer) == 0


def test_a_paid_invoice_of_another_payment_never_credits_another_customer(
    btcpay_on, btcpay_sim, customer, other_customer, client
):
    # The other customer's payment has no invoice reference yet (its create timed out); an
    # event naming it but about a paid invoice made for someone else must not settle it.
    theirs: Payment = PaymentFactory(user=other_customer, gateway="btcpay", amount=D("40"), external_ref="")
    _status, invoice = btcpay_sim.create_invoice(DEFAULT_STORE, {"amount": "40", "currency": "USD", "metadata": {}})
    btcpay_sim.pay(invoice["id"])
    body = event(invoice["id"], order_id=str(theirs.pk))

    assert post_event(client, body, signature_for(body, DEFAULT_SECRET)).status_code == 200
    theirs.refresh_from_db()
    assert theirs.status == Payment.Status.PENDING
    assert wallet_balance(user=other_customer) == 0 and wallet_balance(user=customer) == 0


def test_an_invoice_whose_amount_does_not_match_is_not_credited(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.state.invoices[payment.external_ref].amount = D("4")  # changed at the server
    btcpay_sim.pay(payment.external_ref)
    deliver_outbox(client, btcpay_sim)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert "mismatch" in payment.note
    assert wallet_balance(user=customer) == 0


def test_an_expired_invoice_fails_the_payment(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.expire(payment.external_ref)
    assert deliver_outbox(client, btcpay_sim) == [200]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED


def test_an_expired_invoice_paid_late_is_credited(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.expire(payment.external_ref)
    deliver_outbox(client, btcpay_sim)

    btcpay_sim.pay(payment.external_ref)  # BTCPay: Expired, additionalStatus PaidLate
    assert btcpay_sim.state.invoices[payment.external_ref].additional == "PaidLate"
    deliver_outbox(client, btcpay_sim)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert deposits(customer) == [("deposit", D("40"))]


def test_a_partial_payment_waits_then_fails_when_the_invoice_expires(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref, D("20"))
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING

    btcpay_sim.expire(payment.external_ref)
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED and wallet_balance(user=customer) == 0


def test_a_partial_payment_marked_settled_credits_what_was_paid_with_its_bonus(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    BonusTierFactory(min_amount=D("10"), percent=D("10"))
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref, D("15"))
    btcpay_sim.mark(payment.external_ref, "Settled")
    deliver_outbox(client, btcpay_sim)

    payment.refresh_from_db()
    assert (payment.status, payment.credited) == (Payment.Status.PAID, D("15"))
    assert deposits(customer) == [("bonus", D("1.5")), ("deposit", D("15"))]


def test_an_invoice_marked_settled_after_a_full_payment_credits_the_amount(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref, D("40"))
    btcpay_sim.state.invoices[payment.external_ref].status = "Processing"
    btcpay_sim.state.outbox.clear()
    btcpay_sim.mark(payment.external_ref, "Settled")
    deliver_outbox(client, btcpay_sim)
    assert deposits(customer) == [("deposit", D("40"))]


def test_an_invoice_marked_settled_with_nothing_paid_credits_nothing(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.mark(payment.external_ref, "Settled")
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and "Nothing arrived" in payment.note
    assert wallet_balance(user=customer) == 0


def test_an_invoice_in_another_currency_is_not_credited(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.state.invoices[payment.external_ref].currency = "EUR"
    btcpay_sim.pay(payment.external_ref)
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and wallet_balance(user=customer) == 0


def test_an_invoice_marked_invalid_fails_the_payment(btcpay_on, btcpay_sim, customer, customer_client, client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.mark(payment.external_ref, "Invalid")
    deliver_outbox(client, btcpay_sim)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED


def test_a_webhook_that_cannot_be_read_back_is_answered_503_for_redelivery(
    btcpay_on, btcpay_sim, customer, customer_client, client
):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref)
    body, signature = btcpay_sim.state.outbox[-1]
    btcpay_sim.stop()

    assert post_event(client, body, signature).status_code == 503
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and wallet_balance(user=customer) == 0


# --- Reading back and listing -------------------------------------------------------------


def test_fetch_reads_the_invoice_state(btcpay_on, btcpay_sim, customer, customer_client):
    payment, _ = deposit(customer_client, "40")
    assert BTCPayGateway().fetch(payment=payment).status == Payment.Status.PENDING
    btcpay_sim.pay(payment.external_ref)
    report = BTCPayGateway().fetch(payment=payment)
    assert (report.status, report.amount, report.currency) == (Payment.Status.PAID, D("40"), "USD")


def test_fetch_without_an_invoice_is_a_gateway_error(btcpay_on):
    with pytest.raises(GatewayError):
        BTCPayGateway().fetch(payment=PaymentFactory.build(gateway="btcpay", external_ref=""))


def test_list_recent_returns_each_invoice_with_its_state(btcpay_on, btcpay_sim, customer, customer_client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref)
    listed = dict(BTCPayGateway().list_recent(since=timezone.now() - timedelta(days=3)))
    assert listed[payment.external_ref].status == Payment.Status.PAID
    assert BTCPayGateway().list_recent(since=timezone.now() + timedelta(days=1)) == []


def test_reconcile_finds_an_invoice_the_simulator_settled_whose_webhook_never_arrived(
    btcpay_on, btcpay_sim, customer, customer_client
):
    from wallets.reconcile import payments_reconcile

    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref)
    btcpay_sim.state.outbox.clear()  # the webhook is lost on its way
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    found = payments_reconcile(gateway="btcpay")
    assert [f.payment_id for f in found.findings] == [payment.pk]
    payments_reconcile(gateway="btcpay", fix=True)
    payments_reconcile(gateway="btcpay", fix=True)  # a second pass finds nothing more to do
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert Entry.objects.filter(payment=payment, kind="deposit").count() == 1
    assert payments_reconcile(gateway="btcpay").findings == []


# --- Races ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_webhook_credit_once(btcpay_on, btcpay_sim, settings):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    referrer = UserFactory(username="referrer")
    customer: User = UserFactory(username="payer", referred_by=referrer)
    client = Client()
    client.force_login(customer)
    payment, _ = deposit(client, "100")
    btcpay_sim.pay(payment.external_ref)
    body, signature = btcpay_sim.state.outbox[-1]

    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def deliver() -> None:
        try:
            barrier.wait()
            statuses.append(post_event(Client(), body, signature).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert statuses == [200] * 20
    assert (wallet_balance(user=customer), wallet_balance(user=referrer)) == (D("110"), D("5"))
    assert Entry.objects.filter(payment=payment).count() == 3


# --- The simulator's own surface ------------------------------------------------------------


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_the_simulator_refuses_another_key_and_another_store(btcpay_sim):
    invoices = f"{btcpay_sim.url}/api/v1/stores/{DEFAULT_STORE}/invoices"
    assert _http("GET", invoices, headers={"Authorization": "token wrong"})[0] == 401
    other = f"{btcpay_sim.url}/api/v1/stores/other/invoices"
    assert _http("GET", other, headers={"Authorization": f"token {DEFAULT_KEY}"})[0] == 403


def test_the_control_endpoint_sets_faults_pays_and_resets(btcpay_on, btcpay_sim, customer_client):
    control = f"{btcpay_sim.url}/_sim/control"
    payment, _ = deposit(customer_client, "40")
    assert _http("POST", control, {"action": "fault", "mode": "duplicate"})[0] == 200
    assert _http("POST", control, {"action": "pay", "invoice": payment.external_ref, "amount": "10"})[0] == 200
    assert len(btcpay_sim.state.outbox) == 2  # one InvoiceReceivedPayment, twice
    status, state = _http("GET", f"{btcpay_sim.url}/_sim/state")
    assert status == 200 and state["invoices"][0]["additionalStatus"] == "PaidPartial"
    assert _http("POST", control, {"action": "fault", "mode": "nonsense"})[0] == 400
    assert _http("POST", control, {"action": "reset"})[0] == 200
    assert btcpay_sim.state.invoices == {} and btcpay_sim.state.fault == "none"


def test_the_greenfield_webhook_api_registers_where_deliveries_go(btcpay_sim):
    url = f"{btcpay_sim.url}/api/v1/stores/{DEFAULT_STORE}/webhooks"
    body = {"url": "http://127.0.0.1:1/hook", "secret": "s3", "authorizedEvents": {"everything": True}}
    status, webhook = _http("POST", url, body, headers={"Authorization": f"token {DEFAULT_KEY}"})
    assert status == 200 and webhook["secret"] == "s3"
    assert (btcpay_sim.state.webhook_url, btcpay_sim.state.webhook_secret) == ("http://127.0.0.1:1/hook", "s3")
