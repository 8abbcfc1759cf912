"""Races, run for real: threads with their own PostgreSQL connections."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from tests.factories import UserFactory
from tests.wallets.conftest import checkout_event
from tests.wallets.factories import BonusTierFactory, PaymentFactory, fund
from wallets.audit import ledger_audit
from wallets.gateways.stripe import StripeGateway
from wallets.models import Entry, Payment, Wallet
from wallets.selectors import wallet_balance
from wallets.services import (
    MAX_PENDING_MANUAL_PAYMENTS,
    InsufficientFunds,
    WalletError,
    payment_approve,
    payment_fail,
    payment_notify,
    payment_settle,
    payment_start,
    wallet_credit,
    wallet_debit,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = Decimal


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` threads released at the same moment; results or exceptions, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()  # each thread has its own connection: leave none open

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_fifty_concurrent_debits_against_funds_for_ten_exactly_ten_succeed(customer):
    fund(customer, "10")

    def debit(i: int) -> str:
        try:
            wallet_debit(
                user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key=f"order:{i}:charge", order_ref=i
            )
        except InsufficientFunds:
            return "short"
        return "ok"

    outcomes = Counter(run_together(50, debit))
    assert outcomes == {"ok": 10, "short": 40}
    assert wallet_balance(user=customer) == D("0")
    charges = Entry.objects.filter(user=customer, kind=Entry.Kind.CHARGE).order_by("id")
    # Never below zero, and each debit saw the one before it: 9, 8, ... 0.
    assert [e.balance_after for e in charges] == [D(n) for n in range(9, -1, -1)]


def test_concurrent_credits_with_one_key_credit_once(customer):
    def credit(i: int) -> int:
        return wallet_credit(
            user=customer, amount=D("7.5"), kind=Entry.Kind.DEPOSIT, idempotency_key="payment:1:deposit"
        ).pk

    ids = run_together(20, credit)
    assert all(isinstance(pk, int) for pk in ids), ids
    assert len(set(ids)) == 1
    assert wallet_balance(user=customer) == D("7.5")
    assert Entry.objects.filter(user=customer).count() == 1


def test_concurrent_first_credits_create_one_wallet_and_lose_nothing(customer):
    def credit(i: int) -> int:
        return wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.BONUS, idempotency_key=f"k{i}").pk

    results = run_together(20, credit)
    assert all(isinstance(pk, int) for pk in results), results
    assert Wallet.objects.filter(user=customer).count() == 1
    assert wallet_balance(user=customer) == D("20")


def test_concurrent_debits_with_one_key_debit_once(customer):
    fund(customer, "10")

    def debit(i: int) -> int:
        return wallet_debit(
            user=customer, amount=D("4"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge", order_ref=1
        ).pk

    ids = run_together(20, debit)
    assert all(isinstance(pk, int) for pk in ids), ids
    assert len(set(ids)) == 1
    assert wallet_balance(user=customer) == D("6")


def test_concurrent_approvals_of_one_payment_credit_once(customer, staff):
    payment = PaymentFactory(user=customer, amount=D("25"))

    results = run_together(10, lambda i: payment_approve(payment_id=payment.pk, actor=staff).status)
    assert results == [Payment.Status.PAID] * 10
    assert wallet_balance(user=customer) == D("25")
    assert Entry.objects.filter(payment=payment, kind=Entry.Kind.DEPOSIT).count() == 1


def test_concurrent_deliveries_of_one_stripe_event_credit_once(customer, settings):
    referred = UserFactory(username="referred", referred_by=customer)
    payment = PaymentFactory(user=referred, gateway="stripe", amount=D("40"), external_ref="cs_race")
    event = json.loads(checkout_event(session_id="cs_race", payment_id=payment.pk, amount_minor=4000))

    results = run_together(
        10, lambda i: payment_notify(gateway="stripe", notification=StripeGateway().read_event(event)).status
    )
    assert results == [Payment.Status.PAID] * 10
    assert wallet_balance(user=referred) == D("40")
    assert wallet_balance(user=customer) == D("2")
    assert Entry.objects.filter(payment=payment).count() == 2


def test_parallel_transfer_reports_never_exceed_the_pending_limit(customer):
    def report(i: int) -> str:
        try:
            payment_start(user=customer, gateway="manual", amount=D("10"), data={"reference": f"transfer {i}"})
        except WalletError:
            return "refused"
        return "created"

    results = run_together(12, report)
    assert Counter(results) == {"created": MAX_PENDING_MANUAL_PAYMENTS, "refused": 12 - MAX_PENDING_MANUAL_PAYMENTS}
    assert Payment.objects.filter(user=customer, status=Payment.Status.PENDING).count() == MAX_PENDING_MANUAL_PAYMENTS


def test_twenty_concurrent_settlements_credit_deposit_bonus_and_commission_once(customer, settings):
    BonusTierFactory(min_amount=D("50"), percent=D("10"))
    referred = UserFactory(username="referred", referred_by=customer)
    payment = PaymentFactory(user=referred, gateway="stripe", amount=D("100"), external_ref="cs_settle")

    results = run_together(20, lambda i: payment_settle(payment_id=payment.pk, late=bool(i % 2)).status)
    assert results == [Payment.Status.PAID] * 20
    assert (wallet_balance(user=referred), wallet_balance(user=customer)) == (D("110"), D("5"))
    assert sorted(Entry.objects.filter(payment=payment).values_list("kind", flat=True)) == [
        "bonus",
        "commission",
        "deposit",
    ]


def test_settling_and_failing_one_payment_at_once_end_in_one_consistent_state(customer):
    payment = PaymentFactory(user=customer, amount=D("10"))

    def settle_or_fail(i: int) -> str:
        if i % 2:
            return payment_fail(payment_id=payment.pk, note="expired").status
        try:
            return payment_settle(payment_id=payment.pk).status
        except WalletError:
            return "refused"

    run_together(20, settle_or_fail)
    payment.refresh_from_db()
    credited = wallet_balance(user=customer)
    if payment.status == Payment.Status.PAID:
        assert credited == D("10") and Entry.objects.filter(payment=payment).count() == 1
    else:
        assert payment.status == Payment.Status.FAILED
        assert credited == D("0") and not Entry.objects.exists()


def test_twenty_concurrent_deliveries_of_one_dispute_debit_once(customer, settings):
    payment = PaymentFactory(user=customer, gateway="stripe", amount=D("25"), external_ref="cs_d", charge_ref="pi_d")
    payment_settle(payment_id=payment.pk)
    wallet_debit(user=customer, amount=D("20"), kind=Entry.Kind.ADJUSTMENT, idempotency_key="spent", memo="spent")
    event = {
        "id": "evt_dispute",
        "type": "charge.dispute.created",
        "data": {
            "object": {
                "id": "dp_race",
                "object": "dispute",
                "amount": 2500,
                "currency": "usd",
                "payment_intent": "pi_d",
                "status": "needs_response",
            }
        },
    }
    results = run_together(
        20, lambda i: payment_notify(gateway="stripe", notification=StripeGateway().read_event(event)).status
    )

    assert results == [Payment.Status.REFUNDED] * 20
    assert Entry.objects.filter(kind=Entry.Kind.CHARGEBACK).count() == 1
    wallet = Wallet.objects.get(user=customer)
    assert (wallet.balance, wallet.debt) == (D("0"), D("20"))
    assert ledger_audit() == []
