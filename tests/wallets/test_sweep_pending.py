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
