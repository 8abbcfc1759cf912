"""NOWPayments: invoices created at the simulator, IPNs signed the way NOWPayments signs them,
every payment read back from the simulator's API before anything is credited."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kernel import jsjson
from simulators.nowpayments import NowPaymentsSimulator
from simulators.nowpayments.simulator import sign
from tests.wallets.factories import BonusTierFactory
from tests.wallets.test_concurrency import run_together
from wallets.gateways import nowpayments
from wallets.gateways.base import GatewayError
from wallets.gateways.nowpayments import NowPaymentsGateway, canonical_json, signature
from wallets.models import Entry, GatewaySetting, Payment
from wallets.selectors import wallet_balance
from wallets.services import WalletError, payment_start

pytestmark = pytest.mark.django_db
D = Decimal
WEBHOOK = "/wallet/webhooks/nowpayments/"
API_KEY = "np-test-key"
IPN_SECRET = "np-test-ipn-secret"


@pytest.fixture
def np_sim() -> Iterator[NowPaymentsSimulator]:
    simulator = NowPaymentsSimulator(api_key=API_KEY, ipn_secret=IPN_SECRET).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def np_on(settings, np_sim):  # type: ignore[no-untyped-def]
    settings.NOWPAYMENTS_API_URL = np_sim.api_url
    settings.NOWPAYMENTS_API_KEY = API_KEY
    settings.NOWPAYMENTS_IPN_SECRET = IPN_SECRET
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    settings.PANEL_BASE_URL = "http://127.0.0.1:8000"
    return np_sim


def start(user, amount: str = "100") -> Payment:  # type: ignore[no-untyped-def]
    return payment_start(
        user=user, gateway="nowpayments", amount=D(amount), return_url="http://127.0.0.1:8000/wallet/add-funds/"
    ).payment


def pay(sim: NowPaymentsSimulator, payment: Payment, action: str = "pay") -> dict[str, Any]:
    """The customer acts on the invoice page; the simulator's IPNs are posted by the test."""
    return sim.act(invoice_id=payment.external_ref, action=action, deliver=False)


def ipn(body: dict[str, Any], *, secret: str | None = IPN_SECRET, client: Client | None = None):  # type: ignore[no-untyped-def]
    client = client or Client(enforce_csrf_checks=True)
    headers = {} if secret is None else {"HTTP_X_NOWPAYMENTS_SIG": sign(body, secret)}
    return client.post(WEBHOOK, data=json.dumps(body), content_type="application/json", **headers)


def snapshot() -> tuple[list[tuple[Any, ...]], list[int]]:
    payments = list(Payment.objects.order_by("id").values_list("id", "status", "note", "credited"))
    return payments, list(Entry.objects.order_by("id").values_list("id", flat=True))


# --- Creating the invoice ---------------------------------------------------------------------


def test_start_creates_an_invoice_priced_in_the_panel_currency_and_redirects_to_it(np_on, customer):
    started = payment_start(
        user=customer, gateway="nowpayments", amount=D("25"), return_url="http://127.0.0.1:8000/wallet/add-funds/"
    )
    invoice = np_on.invoices[started.payment.external_ref]
    assert started.redirect_url == invoice["invoice_url"]
    assert invoice["price_amount"] == "25.0"
    assert invoice["price_currency"] == "usd"
    assert invoice["order_id"] == str(started.payment.pk)
    assert invoice["ipn_callback_url"] == "http://127.0.0.1:8000/wallet/webhooks/nowpayments/"
    assert invoice["success_url"].startswith("http://127.0.0.1:8000/wallet/add-funds/")
    assert invoice["cancel_url"].startswith("http://127.0.0.1:8000/wallet/add-funds/")
    assert started.payment.status == Payment.Status.PENDING


def test_the_add_funds_form_redirects_the_customer_to_the_invoice_page(np_on, customer):
    client = Client()
    client.force_login(customer)
    response = client.post("/wallet/add-funds/nowpayments/", {"amount": "40"})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{np_on.url}/payment/?iid=")
    page = Client().get("/wallet/add-funds/nowpayments/")
    assert page.status_code in {302, 405}


def test_the_add_funds_page_lets_its_forms_go_to_the_invoice_page(np_on, customer):
    client = Client()
    client.force_login(customer)
    csp = client.get("/wallet/")["Content-Security-Policy"]
    form_action = csp.split("form-action", 1)[1].split(";")[0].split()
    assert form_action == ["'self'", np_on.url, "https://nowpayments.io"]


def test_a_create_timeout_tells_the_customer_to_retry_and_credits_nothing(np_on, customer, monkeypatch):
    monkeypatch.setattr(nowpayments, "READ_TIMEOUT_SECONDS", 0.3)
    np_on.set_fault("hang", seconds=5)
    with pytest.raises(WalletError, match="try again"):
        start(customer)
    np_on.set_fault(None)
    payment = Payment.objects.get(user=customer)
    assert payment.status == Payment.Status.FAILED
    assert payment.external_ref == ""
    assert wallet_balance(user=customer) == D("0")
    assert not Entry.objects.exists()


def test_an_invoice_made_while_we_timed_out_still_settles_when_paid(np_on, customer, monkeypatch):
    monkeypatch.setattr(nowpayments, "READ_TIMEOUT_SECONDS", 0.3)
    np_on.set_fault("hang", seconds=5)
    with pytest.raises(WalletError):
        start(customer, "100")
    np_on.set_fault(None)
    payment = Payment.objects.get(user=customer)
    # NOWPayments made the invoice after all, and the customer paid it.
    invoice = np_on.create_invoice(
        {"price_amount": 100, "price_currency": "usd", "order_id": str(payment.pk), "ipn_callback_url": "x"}
    )
    body = np_on.act(invoice_id=invoice["id"], action="pay", deliver=False)
    assert ipn(body).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("100")
    assert Entry.objects.filter(user=customer).count() == 1


def test_a_create_error_fails_the_payment_and_credits_nothing(np_on, customer):
    np_on.set_fault("error")
    with pytest.raises(WalletError, match="try again"):
        start(customer)
    assert Payment.objects.get(user=customer).status == Payment.Status.FAILED
    assert not Entry.objects.exists()


def test_the_gateway_is_off_without_its_ipn_secret(settings):
    settings.NOWPAYMENTS_API_KEY = API_KEY
    settings.NOWPAYMENTS_IPN_SECRET = ""
    assert not NowPaymentsGateway().configured()


# --- The signature --------------------------------------------------------------------------


def test_the_signature_is_hmac_sha512_of_the_sorted_compact_json():
    body = {"payment_status": "finished", "b": {"z": 1, "a": 2}, "actually_paid": 0.5, "order_id": "7"}
    assert canonical_json(body) == '{"actually_paid":0.5,"b":{"a":2,"z":1},"order_id":"7","payment_status":"finished"}'
    expected = hmac.new(b"s", canonical_json(body).encode(), hashlib.sha512).hexdigest()
    assert signature(body, "s") == expected


def test_numbers_are_signed_as_javascript_writes_them():
    body = jsjson.loads('{"b":2e-05,"a":1.0,"c":1.5e-8,"d":12345678901234567890,"e":"é"}')
    assert canonical_json(body) == '{"a":1,"b":0.00002,"c":1.5e-8,"d":12345678901234567000,"e":"é"}'


@pytest.mark.parametrize("form", ["recursive", "node", "ascii"])
def test_each_documented_signing_recipe_verifies(np_on, customer, form, rf):
    body = {"payment_id": 5, "actually_paid": 0.00002, "order_description": "Dépôt", "fee": {"serviceFee": 0.1}}
    text = {
        "recursive": canonical_json(body),
        "node": jsjson.dumps(body, sort_keys=True, keys=sorted(body)),
        "ascii": jsjson.dumps(body, sort_keys=True, ensure_ascii=True),
    }[form]
    digest = hmac.new(IPN_SECRET.encode(), text.encode(), hashlib.sha512).hexdigest()
    request = rf.post(WEBHOOK, data=json.dumps(body), content_type="application/json", HTTP_X_NOWPAYMENTS_SIG=digest)
    assert NowPaymentsGateway().verify_notification(request).raw == body


def test_a_small_crypto_amount_is_verified_and_credited(np_on, customer):
    GatewaySetting.objects.update_or_create(code="nowpayments", defaults={"min_amount": D("1")})
    payment = start(customer, "1")  # 0.00002 BTC: Python would write 2e-05
    body = pay(np_on, payment)
    assert body["pay_amount"] == 0.00002
    assert ipn(body).status_code == 200
    assert wallet_balance(user=customer) == D("1")


@pytest.mark.parametrize("secret", [None, "not-the-secret"])
def test_a_bad_or_missing_signature_is_refused_and_credits_nothing(np_on, customer, secret):
    payment = start(customer)
    body = pay(np_on, payment)
    before = snapshot()
    response = ipn(body, secret=secret)
    assert response.status_code == 400
    assert snapshot() == before
    assert wallet_balance(user=customer) == D("0")


def test_a_body_changed_after_signing_is_refused(np_on, customer):
    payment = start(customer)
    body = pay(np_on, payment)
    headers = {"HTTP_X_NOWPAYMENTS_SIG": sign(body, IPN_SECRET)}
    body["actually_paid"] = 999
    response = Client().post(WEBHOOK, data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 400
    assert wallet_balance(user=customer) == D("0")


# --- Paying -----------------------------------------------------------------------------------


def test_a_finished_payment_credits_the_deposit_and_its_bonus_once(np_on, customer):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    payment = start(customer, "100")
    body = pay(np_on, payment)
    assert ipn(body).status_code == 200
    assert ipn(body).status_code == 200  # finished twice credits once
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.credited == D("100")
    assert payment.pay_currency == "BTC"
    assert payment.pay_amount == D("0.002")
    assert payment.paid_amount == D("0.002")
    assert wallet_balance(user=customer) == D("110")
    assert Entry.objects.filter(user=customer).count() == 2


def test_the_ipn_is_read_back_from_the_api_before_crediting(np_on, customer):
    payment = start(customer)
    body = pay(np_on, payment)
    # A signed IPN that says "finished" while the API still says "waiting" credits nothing.
    np_on.payments[str(body["payment_id"])]["payment_status"] = "waiting"
    assert ipn(body).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == D("0")
    assert np_on.counts["payment"] == 1


def test_intermediate_statuses_credit_nothing(np_on, customer):
    payment = start(customer)
    body = pay(np_on, payment)
    for status in ("waiting", "confirming", "confirmed", "sending"):
        np_on.payments[str(body["payment_id"])]["payment_status"] = status
        assert ipn({**body, "payment_status": status}).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == D("0")


def test_a_partial_payment_credits_the_part_that_arrived_at_the_quoted_rate(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment, "partial")
    assert body["payment_status"] == "partially_paid"
    assert ipn(body).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.credited == D("50")  # 100 × 0.001 / 0.002
    assert payment.paid_amount == D("0.001")
    assert wallet_balance(user=customer) == D("50")


def test_an_overpayment_credits_the_amount_asked_never_more(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment, "overpay")
    assert ipn(body).status_code == 200
    payment.refresh_from_db()
    assert payment.credited == D("100")
    assert payment.paid_amount == D("0.004")
    assert wallet_balance(user=customer) == D("100")


def test_an_expired_invoice_fails_and_a_payment_arriving_later_settles_late(np_on, customer):
    payment = start(customer, "100")
    expired = pay(np_on, payment, "expire")
    assert ipn(expired).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.FAILED
    assert wallet_balance(user=customer) == D("0")
    late = pay(np_on, payment, "pay_late")
    assert ipn(late).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("100")


def test_expired_after_finished_does_not_uncredit(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment)
    assert ipn(body).status_code == 200
    # Out of order: an older "expired" (and an old "waiting") arrive after "finished".
    assert ipn({**body, "payment_status": "expired"}).status_code == 200
    assert ipn({**body, "payment_status": "waiting"}).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("100")


def test_an_expired_ipn_when_the_api_says_finished_credits(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment)
    assert ipn({**body, "payment_status": "expired"}).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("100")


def test_an_ipn_for_an_unknown_payment_changes_nothing(np_on, customer):
    payment = start(customer)
    body = pay(np_on, payment)
    before = snapshot()
    response = ipn({**body, "invoice_id": 1, "order_id": "999999"})
    assert response.status_code == 200
    assert snapshot() == before


def test_an_ipn_naming_another_customers_payment_credits_nobody(np_on, customer, other_customer):
    mine = start(customer, "100")
    theirs = start(other_customer, "100")
    body = pay(np_on, mine)
    # A genuine payment of my invoice, relabelled with the other customer's invoice and order.
    forged = {**body, "invoice_id": int(theirs.external_ref), "order_id": str(theirs.pk)}
    assert ipn(forged).status_code == 200
    assert Payment.objects.get(pk=theirs.pk).status == Payment.Status.PENDING
    assert wallet_balance(user=other_customer) == D("0")
    assert wallet_balance(user=customer) == D("0")


def test_a_payment_whose_price_does_not_match_the_invoice_is_left_to_staff(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment)
    np_on.payments[str(body["payment_id"])]["price_amount"] = 10
    assert ipn(body).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert "mismatch" in payment.note
    assert wallet_balance(user=customer) == D("0")


def test_a_payment_in_another_price_currency_is_left_to_staff(np_on, customer):
    payment = start(customer, "100")
    body = pay(np_on, payment)
    np_on.payments[str(body["payment_id"])]["price_currency"] = "eur"
    assert ipn(body).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == D("0")


def test_the_api_unreachable_on_read_back_asks_for_redelivery(np_on, customer, settings):
    payment = start(customer)
    body = pay(np_on, payment)
    settings.NOWPAYMENTS_API_URL = "http://127.0.0.1:9/v1"
    assert ipn(body).status_code == 503
    assert wallet_balance(user=customer) == D("0")
    settings.NOWPAYMENTS_API_URL = np_on.api_url
    assert ipn(body).status_code == 200
    assert wallet_balance(user=customer) == D("100")


def test_a_fee_is_charged_on_the_invoice_and_the_chosen_amount_credited(np_on, customer):
    from wallets.models import GatewaySetting

    GatewaySetting.objects.create(code="nowpayments", fee_percent=D("2"))
    payment = start(customer, "100")
    assert np_on.invoices[payment.external_ref]["price_amount"] == "102.0"
    body = pay(np_on, payment, "partial")
    assert ipn(body).status_code == 200
    # Half of 102 arrived: half of the deposit is credited, the fee paid in proportion.
    assert wallet_balance(user=customer) == D("50")


def test_the_webhook_takes_only_post(np_on):
    assert Client().get(WEBHOOK).status_code == 405


def test_the_simulator_delivers_signed_ipns_the_gateway_verifies(np_on, customer, rf):
    payment = start(customer)
    body = pay(np_on, payment)
    request = rf.post(
        WEBHOOK, data=json.dumps(body), content_type="application/json", HTTP_X_NOWPAYMENTS_SIG=sign(body, IPN_SECRET)
    )
    notification = NowPaymentsGateway().verify_notification(request)
    assert notification.reference == payment.external_ref
    assert notification.payment_id == payment.pk


# --- Races ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deliveries_of_one_ipn_credit_once(np_on, customer):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    payment = start(customer, "100")
    body = pay(np_on, payment)

    def deliver(i: int) -> int:
        return int(ipn(body).status_code)

    codes = run_together(20, deliver)
    assert codes == [200] * 20
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("110")
    assert Entry.objects.filter(user=customer, kind=Entry.Kind.DEPOSIT).count() == 1
    assert Entry.objects.filter(user=customer, kind=Entry.Kind.BONUS).count() == 1


# --- IPNs delivered by the simulator to the live server -------------------------------------


@pytest.fixture
def np_live(np_on, settings, live_server):  # type: ignore[no-untyped-def]
    settings.PANEL_BASE_URL = live_server.url
    return np_on


@pytest.mark.django_db(transaction=True)
def test_ipns_signed_with_another_secret_are_refused_and_credit_nothing(np_live, customer):
    payment = start(customer, "100")
    np_live.set_fault("bad_signature")
    np_live.act(invoice_id=payment.external_ref, action="pay")
    assert [d["code"] for d in np_live.deliveries] == [400] * 5
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == D("0")


@pytest.mark.django_db(transaction=True)
def test_duplicated_ipns_credit_once(np_live, customer):
    payment = start(customer, "100")
    np_live.set_fault("duplicate")
    np_live.act(invoice_id=payment.external_ref, action="pay")
    assert [d["code"] for d in np_live.deliveries] == [200] * 10
    assert wallet_balance(user=customer) == D("100")
    assert Entry.objects.filter(user=customer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_ipns_out_of_order_settle_once_and_stay_settled(np_live, customer):
    payment = start(customer, "100")
    np_live.set_fault("out_of_order")
    np_live.act(invoice_id=payment.external_ref, action="pay")
    assert [d["status"] for d in np_live.deliveries] == ["finished", "sending", "confirmed", "confirming", "waiting"]
    np_live.set_fault(None)
    np_live.send_ipn(str(np_live.deliveries[0]["payment_id"]), status="expired")
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("100")


@pytest.mark.django_db(transaction=True)
def test_an_invoice_left_to_expire_fails_the_payment(np_live, customer):
    payment = start(customer, "100")
    np_live.act(invoice_id=payment.external_ref, action="expire")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert wallet_balance(user=customer) == D("0")


# --- Reading payments without their IPN (reconciliation) --------------------------------------


@pytest.fixture
def np_account(np_on, settings):  # type: ignore[no-untyped-def]
    settings.NOWPAYMENTS_EMAIL = np_on.email
    settings.NOWPAYMENTS_PASSWORD = np_on.password
    return np_on


def test_list_recent_reports_a_payment_whose_ipn_never_arrived(np_account, customer):
    payment = start(customer, "100")
    other = start(customer, "40")
    pay(np_account, payment)  # paid at the gateway; no IPN delivered
    pay(np_account, other, "partial")
    pairs = dict(NowPaymentsGateway().list_recent(since=payment.created_at))
    assert pairs[payment.external_ref].status == Payment.Status.PAID
    assert pairs[payment.external_ref].credit == D("100")
    assert pairs[other.external_ref].credit == D("20")
    assert np_account.counts["list"] == 1
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING


def test_fetch_finds_the_payment_on_the_invoice_without_an_ipn(np_account, customer):
    payment = start(customer, "100")
    pay(np_account, payment, "overpay")
    report = NowPaymentsGateway().fetch(payment=Payment.objects.get(pk=payment.pk))
    assert report.status == Payment.Status.PAID
    assert report.credit == D("200")  # the settle path credits at most the amount
    assert Payment.objects.get(pk=payment.pk).paid_amount == D("0.004")


def test_without_the_account_credentials_nothing_is_listed(np_on, customer):
    payment = start(customer, "100")
    pay(np_on, payment)
    assert NowPaymentsGateway().list_recent(since=payment.created_at) == []
    report = NowPaymentsGateway().fetch(payment=Payment.objects.get(pk=payment.pk))
    assert report.status == Payment.Status.PENDING


def test_wrong_account_credentials_are_a_gateway_error(np_account, customer, settings):
    settings.NOWPAYMENTS_PASSWORD = "wrong"
    with pytest.raises(GatewayError):
        NowPaymentsGateway().list_recent(since=start(customer).created_at)
