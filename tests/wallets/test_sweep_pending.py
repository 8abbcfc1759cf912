"""Hosted payments still pending are asked about: a payment the gateway took whose
notification was lost is credited once; a checkout left unpaid fails as abandoned, and a
payment arriving after that is still credited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.wallets.test_btcpay import btcpay_on, btcpay_sim, deposit  # noqa: F401  (fixtures)
from tests.wallets.test_paypal import _start, sim  # noqa: F401  (fixtures)
from wallets.models import Entry, Payment
from wallets.reconcile import payments_sweep_pending

pytestmark = pytest.mark.django_db
ASK, ABANDON = timedelta(minutes=15), timedelta(hours=24)


def age(payment: Payment, delta: timedelta) -> None:
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - delta)


def test_a_btcpay_invoice_paid_whose_webhook_was_lost_is_credited_once(btcpay_on, btcpay_sim, customer_client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.pay(payment.external_ref)
    btcpay_sim.state.outbox.clear()
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 0  # too recent to ask
    age(payment, timedelta(minutes=20))
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 1
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 0
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert Entry.objects.filter(payment=payment, kind="deposit").count() == 1


def test_an_expired_btcpay_invoice_fails(btcpay_on, btcpay_sim, customer_client):
    payment, _ = deposit(customer_client, "40")
    btcpay_sim.expire(payment.external_ref)
    btcpay_sim.state.outbox.clear()
    age(payment, timedelta(minutes=20))
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).failed == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED


def test_a_paypal_checkout_left_unpaid_is_abandoned_after_a_day(sim, customer):
    payment, _ = _start(customer, "50")
    age(payment, timedelta(hours=2))
    swept = payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON)
    assert (swept.waiting, swept.abandoned) == (1, 0)
    age(payment, timedelta(hours=25))
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).abandoned == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED and "in time" in payment.note
    assert not Entry.objects.filter(payment=payment).exists()


# --- PayPal: approved by the buyer, never captured ------------------------------------------------


def test_a_paypal_order_approved_but_never_captured_is_captured_once_by_the_sweep(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref, webhook=False)  # the buyer closed the window; no webhook
    assert sim.orders[payment.external_ref]["status"] == "APPROVED"
    age(payment, timedelta(minutes=20))
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert sim.orders[payment.external_ref]["status"] == "COMPLETED" and len(sim.captures) == 1
    captures = [r for r in sim.requests if r[1].endswith("/capture")]
    assert len(captures) == 1
    # Nothing is pending any more: a second sweep asks nobody and captures nothing.
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 0
    assert len(sim.captures) == 1
    assert Entry.objects.filter(payment=payment, kind="deposit").count() == 1


def test_a_capture_repeated_after_the_sweep_is_answered_with_the_first_capture(sim, customer):
    """The sweep and the buyer's late return race: the same PayPal-Request-Id makes PayPal
    answer the second capture with the first one, and the deposit is credited once."""
    from wallets.gateways.paypal import PayPalGateway
    from wallets.services import payment_return

    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref, webhook=False)
    age(payment, timedelta(minutes=20))
    payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON)
    report = PayPalGateway().capture(payment=payment)
    assert report.status == Payment.Status.PAID and len(sim.captures) == 1
    payment_return(user=customer, gateway="paypal", reference=payment.external_ref)
    assert len(sim.captures) == 1
    assert Entry.objects.filter(payment=payment, kind="deposit").count() == 1


def test_a_paypal_that_fails_is_asked_again_by_the_next_sweep(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref, webhook=False)
    age(payment, timedelta(minutes=20))
    sim.fail_next = 1  # PayPal answers 500
    swept = payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON)
    assert (swept.errors, swept.settled) == (1, 0)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and not Entry.objects.filter(payment=payment).exists()
    assert payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON).settled == 1
    assert len(sim.captures) == 1


def test_an_approved_order_whose_capture_is_declined_stays_unpaid(sim, customer):
    payment, _ = _start(customer, "50")
    sim.approve(payment.external_ref, webhook=False)
    sim.decline_capture = True
    age(payment, timedelta(minutes=20))
    swept = payments_sweep_pending(ask_after=ASK, abandon_after=ABANDON)
    assert swept.settled == 0 and swept.failed == 1
    assert not Entry.objects.filter(payment=payment).exists()
