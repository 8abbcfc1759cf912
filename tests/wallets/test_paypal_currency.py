"""PayPal paid in EUR: quoted at the currencies' rate when created, credited in the panel's
currency at that rate, as paid and never more; refused when the rate is stale."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from currencies.models import Currency
from tests.wallets.test_paypal import _post, _start, sim  # noqa: F401  (fixtures)
from wallets.audit import ledger_audit
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance
from wallets.services import WalletError, payment_start
from wallets.states import PaymentStatus

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def eur(sim, settings):  # type: ignore[no-untyped-def]
    settings.PAYPAL_CURRENCY = "EUR"
    return Currency.objects.create(code="EUR", name="Euro", rate=D("0.9"), updated_at=timezone.now())


def captured(sim, payment: Payment) -> None:  # type: ignore[no-untyped-def]
    """The buyer approves; PayPal captures (as the return would); the webhook is what credits."""
    sim.approve(payment.external_ref, webhook=False)
    assert sim.control({"action": "capture", "order_id": payment.external_ref})["status"] == 201


def test_the_order_asks_the_quoted_euros_and_the_payment_records_the_quote(eur, sim, customer):
    payment, _ = _start(customer, "100")
    assert (payment.pay_currency, payment.pay_amount, payment.rate) == ("EUR", D("90.00"), D("0.9"))
    payment.refresh_from_db()
    assert (payment.pay_currency, payment.pay_amount, payment.rate) == ("EUR", D("90.00"), D("0.9"))
    unit = sim.orders[payment.external_ref]["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "EUR", "value": "90.00"}


def test_the_buyer_coming_back_credits_the_panel_currency_at_the_quoted_rate(eur, sim, customer):
    payment, _ = _start(customer, "100")
    Currency.objects.filter(pk=eur.pk).update(rate=D("0.5"))  # the rate moves after the quote
    client = Client()
    client.force_login(customer)
    back = urlsplit(sim.approve(payment.external_ref))
    client.get(f"{back.path}?{back.query}")
    payment.refresh_from_db()
    assert (payment.status, payment.credited) == (PaymentStatus.PAID, D("100"))
    assert wallet_balance(user=customer) == D("100")
    assert ledger_audit() == []


@pytest.mark.parametrize(("paid", "credited"), [("45.00", "50"), ("90.00", "100"), ("120.00", "100")])
def test_under_and_overpayments_are_credited_as_paid_never_more(eur, sim, customer, paid, credited):
    payment, _ = _start(customer, "100")
    captured(sim, payment)
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref, amount=paid)
    assert _post(sim, event).status_code == 200
    assert _post(sim, event).status_code == 200  # the same delivery twice
    payment.refresh_from_db()
    assert payment.credited == D(credited) and wallet_balance(user=customer) == D(credited)
    assert Entry.objects.filter(payment=payment, kind="deposit").count() == 1
    assert ledger_audit() == []


def test_a_capture_in_another_currency_credits_nothing(eur, sim, customer):
    payment, _ = _start(customer, "100")
    captured(sim, payment)
    event = sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref)
    event["resource"]["amount"] = {"currency_code": "GBP", "value": "90.00"}
    assert _post(sim, event).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING and not Entry.objects.filter(payment=payment).exists()


def test_a_refund_in_euros_takes_back_its_share_in_the_panel_currency(eur, sim, customer):
    payment, _ = _start(customer, "100")
    captured(sim, payment)
    _post(sim, sim.event("PAYMENT.CAPTURE.COMPLETED", payment.external_ref))
    _post(sim, sim.event("PAYMENT.CAPTURE.REFUNDED", payment.external_ref, amount="45.00"))
    payment.refresh_from_db()
    assert (payment.status, payment.reversed_amount) == (PaymentStatus.PARTLY_REFUNDED, D("50"))
    assert wallet_balance(user=customer) == D("50")
    assert ledger_audit() == []


def test_a_stale_rate_refuses_the_payment_before_anything_is_created(eur, sim, customer, settings):
    Currency.objects.filter(pk=eur.pk).update(updated_at=timezone.now() - timedelta(hours=49))
    with pytest.raises(WalletError, match="EUR"):
        payment_start(user=customer, gateway="paypal", amount=D("100"), return_url="http://testserver/wallet/")
    assert not Payment.objects.exists() and sim.orders == {}


def test_no_rate_at_all_refuses_the_payment(sim, customer, settings):
    settings.PAYPAL_CURRENCY = "EUR"
    with pytest.raises(WalletError):
        payment_start(user=customer, gateway="paypal", amount=D("100"), return_url="http://testserver/wallet/")
    assert not Payment.objects.exists()


def test_the_sweep_captures_an_approved_euro_order_at_the_quoted_rate(eur, sim, customer):
    from wallets.reconcile import payments_sweep_pending

    payment, _ = _start(customer, "100")
    sim.approve(payment.external_ref, webhook=False)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    swept = payments_sweep_pending(ask_after=timedelta(minutes=15), abandon_after=timedelta(hours=24))
    assert swept.settled == 1
    payment.refresh_from_db()
    assert payment.credited == D("100") and len(sim.captures) == 1
