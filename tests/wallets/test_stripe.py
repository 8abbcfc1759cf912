"""Stripe Checkout: session creation at the library's HTTP seam (responses), webhooks signed for real."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import responses
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tests.wallets.conftest import checkout_event, stripe_signature
from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance
from wallets.services import WalletError, payment_start

pytestmark = pytest.mark.django_db
D = Decimal
SESSIONS_URL = "https://api.stripe.com/v1/checkout/sessions"
WEBHOOK = "/wallet/stripe/webhook/"


def payment_start_stripe(*, user, amount: Decimal, return_url: str) -> tuple[Payment, str]:  # type: ignore[no-untyped-def]
    started = payment_start(user=user, gateway="stripe", amount=amount, return_url=return_url)
    return started.payment, started.redirect_url


def _session_json(session_id: str = "cs_test_abc") -> dict[str, object]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        "payment_status": "unpaid",
        "status": "open",
    }


def _stripe_payment(user, amount: str = "25", session_id: str = "cs_test_abc") -> Payment:  # type: ignore[no-untyped-def]
    return PaymentFactory(user=user, gateway="stripe", amount=D(amount), external_ref=session_id)


def _post(payload: str, signature: str | None = None, client: Client | None = None):  # type: ignore[no-untyped-def]
    # The webhook is csrf_exempt: Stripe never has our token. Enforce CSRF to prove it.
    client = client or Client(enforce_csrf_checks=True)
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(WEBHOOK, data=payload, content_type="application/json", **headers)


def _snapshot() -> tuple[list[tuple[int, str, str]], list[int]]:
    payments = list(Payment.objects.order_by("id").values_list("id", "status", "note"))
    return payments, list(Entry.objects.values_list("id", flat=True))


# --- Starting a checkout -----------------------------------------------------------------


@responses.activate
def test_start_creates_a_checkout_session_and_remembers_its_id(customer, stripe_on):
    responses.post(SESSIONS_URL, json=_session_json())
    payment, url = payment_start_stripe(user=customer, amount=D("25.50"), return_url="https://panel/wallet/")
    assert url == "https://checkout.stripe.com/c/pay/cs_test_abc"
    payment.refresh_from_db()
    assert (payment.status, payment.gateway, payment.external_ref) == ("pending", "stripe", "cs_test_abc")
    assert wallet_balance(user=customer) == D("0")
    call = responses.calls[0].request
    body = call.body if isinstance(call.body, str) else call.body.decode()
    assert "line_items[0][price_data][unit_amount]=2550" in body
    assert "line_items[0][price_data][currency]=usd" in body
    assert f"client_reference_id={payment.pk}" in body
    assert call.headers["Idempotency-Key"] == f"payment:{payment.pk}:checkout"
    assert call.headers["Authorization"] == "Bearer sk_test_suite"


@responses.activate
def test_start_marks_the_payment_failed_when_stripe_refuses(customer, stripe_on):
    responses.post(SESSIONS_URL, status=400, json={"error": {"type": "invalid_request_error", "message": "nope"}})
    with pytest.raises(WalletError):
        payment_start_stripe(user=customer, amount=D("25"), return_url="https://panel/wallet/")
    assert Payment.objects.get().status == Payment.Status.FAILED
    assert not Entry.objects.exists()


def test_start_is_refused_when_stripe_is_not_configured(customer, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    with pytest.raises(WalletError):
        payment_start_stripe(user=customer, amount=D("25"), return_url="https://panel/wallet/")
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", [D("4.99"), D("5000.01"), D("10.001")])
def test_start_refuses_amounts_outside_limits_or_cents(customer, stripe_on, amount):
    with pytest.raises(WalletError):
        payment_start_stripe(user=customer, amount=amount, return_url="https://panel/wallet/")
    assert not Payment.objects.exists()


# --- The webhook ---------------------------------------------------------------------------


def test_valid_completed_webhook_marks_paid_and_credits(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    response = _post(payload, stripe_signature(payload))
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.raw_notification["id"] == "evt_test_1"
    assert wallet_balance(user=customer) == D("25")
    assert Entry.objects.get(idempotency_key=f"payment:{payment.pk}:deposit").amount == D("25")


def test_replayed_webhook_credits_once(customer, stripe_on):
    BonusTierFactory(min_amount=D("10"), percent=D("10"))
    payment = _stripe_payment(customer, "25")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    signature = stripe_signature(payload)
    assert _post(payload, signature).status_code == 200
    after_first = _snapshot()
    assert _post(payload, signature).status_code == 200
    # Stripe also redelivers the same session under a new event id.
    other = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500, event_id="evt_2")
    assert _post(other, stripe_signature(other)).status_code == 200
    assert _snapshot() == after_first
    assert wallet_balance(user=customer) == D("27.5")


def test_duplicate_webhook_pays_the_referrer_once(customer, stripe_on, settings):
    referred = UserFactory(username="referred", referred_by=customer)
    payment = _stripe_payment(referred, "100")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=10000)
    for _ in range(3):
        assert _post(payload, stripe_signature(payload)).status_code == 200
    assert wallet_balance(user=customer) == D("5")
    assert Entry.objects.filter(kind=Entry.Kind.COMMISSION).count() == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "t=123,v1=deadbeef",
        "garbage",
        stripe_signature("{}"),  # signed, but for another body
    ],
    # Named, not numbered by their text: the last one holds the time it was made.
    ids=["none", "empty", "made-up", "garbage", "another-body"],
)
def test_bad_signature_is_400_and_changes_nothing(customer, stripe_on, signature):
    payment = _stripe_payment(customer)
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    before = _snapshot()
    assert _post(payload, signature).status_code == 400
    assert _snapshot() == before
    assert wallet_balance(user=customer) == D("0")


def test_signature_made_with_another_secret_is_400(customer, stripe_on):
    payment = _stripe_payment(customer)
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    assert _post(payload, stripe_signature(payload, secret="whsec_attacker")).status_code == 400
    assert Payment.objects.get().status == Payment.Status.PENDING
    assert not Entry.objects.exists()


def test_stale_signature_outside_the_tolerance_is_400(customer, stripe_on):
    payment = _stripe_payment(customer)
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    old = stripe_signature(payload, timestamp=int(time.time()) - 3600)
    assert _post(payload, old).status_code == 400
    assert not Entry.objects.exists()


def test_webhook_without_a_configured_secret_is_400(customer, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payment = _stripe_payment(customer)
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    assert _post(payload, stripe_signature(payload)).status_code == 400
    assert not Entry.objects.exists()


def test_get_on_the_webhook_is_405(stripe_on):
    assert Client().get(WEBHOOK).status_code == 405


def test_unhandled_event_types_are_acknowledged_and_ignored(customer, stripe_on):
    payment = _stripe_payment(customer)
    payload = checkout_event(
        session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500, event_type="customer.created"
    )
    before = _snapshot()
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert _snapshot() == before


def test_unknown_session_is_acknowledged_and_moves_no_money(customer, stripe_on):
    _stripe_payment(customer)
    payload = checkout_event(session_id="cs_other", payment_id=999999, amount_minor=2500)
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert not Entry.objects.exists()


def test_amount_mismatch_is_kept_for_staff_and_not_credited(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=100)
    assert _post(payload, stripe_signature(payload)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert "mismatch" in payment.note
    assert payment.raw_notification["data"]["object"]["amount_total"] == 100
    assert not Entry.objects.exists()


def test_currency_mismatch_is_not_credited(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500, currency="eur")
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert not Entry.objects.exists()


def test_delayed_payment_waits_for_async_success(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    unpaid = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500, payment_status="unpaid")
    assert _post(unpaid, stripe_signature(unpaid)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert not Entry.objects.exists()
    paid = checkout_event(
        session_id="cs_test_abc",
        payment_id=payment.pk,
        amount_minor=2500,
        event_type="checkout.session.async_payment_succeeded",
        event_id="evt_async",
    )
    assert _post(paid, stripe_signature(paid)).status_code == 200
    assert wallet_balance(user=customer) == D("25")


def test_expired_session_fails_the_payment(customer, stripe_on):
    payment = _stripe_payment(customer)
    payload = checkout_event(
        session_id="cs_test_abc",
        payment_id=payment.pk,
        amount_minor=2500,
        event_type="checkout.session.expired",
        payment_status="unpaid",
    )
    assert _post(payload, stripe_signature(payload)).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert not Entry.objects.exists()


def test_money_taken_after_we_gave_up_is_still_credited(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert wallet_balance(user=customer) == D("25")


def test_session_id_never_stored_is_matched_by_our_reference(customer, stripe_on):
    payment = _stripe_payment(customer, "25", session_id="")
    payload = checkout_event(session_id="cs_lost", payment_id=payment.pk, amount_minor=2500)
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert wallet_balance(user=customer) == D("25")


def test_a_manual_payment_cannot_be_paid_through_a_stripe_event(customer, stripe_on):
    payment = PaymentFactory(user=customer, external_ref="")
    payload = checkout_event(session_id="cs_x", payment_id=payment.pk, amount_minor=1000)
    assert _post(payload, stripe_signature(payload)).status_code == 200
    assert not Entry.objects.exists()


# --- The deposit view --------------------------------------------------------------------


@responses.activate
def test_card_deposit_view_redirects_to_stripe(customer_client, customer, stripe_on, settings):
    settings.PANEL_BASE_URL = "https://panel.example"
    responses.post(SESSIONS_URL, json=_session_json("cs_view"))
    response = customer_client.post(reverse("wallets:deposit_stripe"), {"amount": "30"})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_view"
    payment = Payment.objects.get()
    assert (payment.user, payment.amount, payment.external_ref) == (customer, D("30"), "cs_view")
    body = responses.calls[0].request.body
    text = body if isinstance(body, str) else body.decode()
    # The way back is the panel's configured address, whatever Host the request named.
    assert "success_url=https%3A%2F%2Fpanel.example%2Fwallet%2F%3Fcheckout%3Dsuccess" in text


@responses.activate
def test_card_deposit_view_shows_the_error_when_stripe_fails(customer_client, stripe_on):
    responses.post(SESSIONS_URL, status=500, json={"error": {"message": "down"}})
    response = customer_client.post(reverse("wallets:deposit_stripe"), {"amount": "30"})
    assert response.status_code == 400
    assert b"could not be started" in response.content
    assert not Entry.objects.exists()


def test_raw_event_is_plain_json(customer, stripe_on):
    payment = _stripe_payment(customer, "25")
    payload = checkout_event(session_id="cs_test_abc", payment_id=payment.pk, amount_minor=2500)
    _post(payload, stripe_signature(payload))
    payment.refresh_from_db()
    assert payment.raw_notification == json.loads(payload)
