from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import UserFactory
from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.models import Entry, GatewaySetting, Payment
from wallets.selectors import bonus_for_amount, wallet_balance
from wallets.services import (
    MAX_PENDING_MANUAL_PAYMENTS,
    WalletError,
    payment_approve,
    payment_cancel,
    payment_reject,
    payment_start,
)

pytestmark = pytest.mark.django_db
D = Decimal


def payment_create_manual(*, user, amount: Decimal, reference: str) -> Payment:  # type: ignore[no-untyped-def]
    return payment_start(user=user, gateway="manual", amount=amount, data={"reference": reference}).payment


def _ledger() -> list[tuple[int, str, Decimal, str]]:
    return list(Entry.objects.order_by("id").values_list("user_id", "kind", "amount", "idempotency_key"))


# --- Manual transfers --------------------------------------------------------------------


def test_manual_deposit_waits_for_staff_and_moves_no_money(customer, manual_on):
    payment = payment_create_manual(user=customer, amount=D("50"), reference="BANK-123")
    assert payment.status == Payment.Status.PENDING
    assert payment.gateway == "manual"
    assert payment.external_ref == "BANK-123"
    assert payment.currency == "USD"
    assert wallet_balance(user=customer) == D("0")


@pytest.mark.parametrize("amount", [D("0.99"), D("10000.01")])
def test_manual_deposit_outside_the_limits_is_refused(customer, manual_on, amount):
    with pytest.raises(WalletError, match=r"minimum|maximum"):
        payment_create_manual(user=customer, amount=amount, reference="r")
    assert not Payment.objects.exists()


def test_manual_deposit_needs_a_reference(customer, manual_on):
    with pytest.raises(WalletError):
        payment_create_manual(user=customer, amount=D("5"), reference="  ")
    assert not Payment.objects.exists()


def test_manual_deposit_is_refused_when_the_gateway_is_off(customer):
    GatewaySetting.objects.update_or_create(code="manual", defaults={"enabled": False})
    with pytest.raises(WalletError):
        payment_create_manual(user=customer, amount=D("5"), reference="r")
    assert not Payment.objects.exists()


def test_too_many_pending_transfers_are_refused(customer, manual_on):
    for _ in range(MAX_PENDING_MANUAL_PAYMENTS):
        payment_create_manual(user=customer, amount=D("5"), reference="r")
    with pytest.raises(WalletError):
        payment_create_manual(user=customer, amount=D("5"), reference="r")
    assert Payment.objects.count() == MAX_PENDING_MANUAL_PAYMENTS


def test_approval_marks_paid_and_credits_the_deposit(customer, staff):
    payment = PaymentFactory(user=customer, amount=D("40"))
    approved = payment_approve(payment_id=payment.pk, actor=staff)
    assert approved.status == Payment.Status.PAID
    assert approved.reviewed_by == staff
    assert approved.paid_at is not None
    assert wallet_balance(user=customer) == D("40")
    entry = Entry.objects.get(idempotency_key=f"payment:{payment.pk}:deposit")
    assert (entry.kind, entry.amount, entry.payment_id, entry.actor_id) == ("deposit", D("40"), payment.pk, staff.pk)


def test_approving_twice_credits_once(customer, staff):
    payment = PaymentFactory(user=customer, amount=D("40"))
    payment_approve(payment_id=payment.pk, actor=staff)
    again = payment_approve(payment_id=payment.pk, actor=staff)
    assert again.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("40")
    assert Entry.objects.filter(payment=payment).count() == 1


def test_a_customer_can_never_approve_their_own_deposit(customer):
    payment = PaymentFactory(user=customer)
    with pytest.raises(WalletError):
        payment_approve(payment_id=payment.pk, actor=customer)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert wallet_balance(user=customer) == D("0")


def test_staff_cannot_approve_their_own_deposit(staff):
    payment = PaymentFactory(user=staff)
    with pytest.raises(WalletError):
        payment_approve(payment_id=payment.pk, actor=staff)
    assert wallet_balance(user=staff) == D("0")


def test_stripe_payments_cannot_be_approved_by_hand(customer, staff):
    payment = PaymentFactory(user=customer, gateway="stripe", external_ref="cs_1")
    with pytest.raises(WalletError):
        payment_approve(payment_id=payment.pk, actor=staff)
    assert wallet_balance(user=customer) == D("0")


def test_reject_marks_failed_and_moves_no_money(customer, staff):
    payment = PaymentFactory(user=customer)
    rejected = payment_reject(payment_id=payment.pk, actor=staff, reason="No such transfer")
    assert rejected.status == Payment.Status.FAILED
    assert rejected.note == "No such transfer"
    assert rejected.reviewed_by == staff
    assert not Entry.objects.exists()


def test_a_rejected_payment_cannot_be_approved(customer, staff):
    payment = PaymentFactory(user=customer)
    payment_reject(payment_id=payment.pk, actor=staff)
    with pytest.raises(WalletError):
        payment_approve(payment_id=payment.pk, actor=staff)
    assert wallet_balance(user=customer) == D("0")


def test_a_paid_payment_cannot_be_rejected(customer, staff):
    payment = PaymentFactory(user=customer, amount=D("3"))
    payment_approve(payment_id=payment.pk, actor=staff)
    with pytest.raises(WalletError):
        payment_reject(payment_id=payment.pk, actor=staff)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("3")


def test_customer_cancels_own_pending_transfer(customer):
    payment = PaymentFactory(user=customer)
    payment_cancel(user=customer, payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED


def test_customer_cannot_cancel_someone_elses_transfer(customer, other_customer):
    payment = PaymentFactory(user=other_customer)
    with pytest.raises(Payment.DoesNotExist):
        payment_cancel(user=customer, payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


# --- Bonus tiers -------------------------------------------------------------------------


def test_the_highest_tier_reached_applies():
    BonusTierFactory(min_amount=D("50"), percent=D("2"))
    BonusTierFactory(min_amount=D("100"), percent=D("5"))
    BonusTierFactory(min_amount=D("500"), percent=D("10"))
    BonusTierFactory(min_amount=D("200"), percent=D("50"), enabled=False)
    assert bonus_for_amount(amount=D("49.99"))[1] == D("0")
    assert bonus_for_amount(amount=D("50"))[1] == D("1")
    assert bonus_for_amount(amount=D("250"))[1] == D("12.5")
    assert bonus_for_amount(amount=D("1000"))[1] == D("100")


def test_bonus_rounds_down():
    BonusTierFactory(min_amount=D("1"), percent=D("3.33"))
    assert bonus_for_amount(amount=D("1.00001"))[1] == D("0.03330")


def test_paid_deposit_earns_its_bonus_as_its_own_entry(customer, staff):
    BonusTierFactory(min_amount=D("100"), percent=D("5"))
    BonusTierFactory(min_amount=D("500"), percent=D("10"))
    payment = PaymentFactory(user=customer, amount=D("200"))
    payment_approve(payment_id=payment.pk, actor=staff)
    bonus = Entry.objects.get(idempotency_key=f"payment:{payment.pk}:bonus")
    assert (bonus.kind, bonus.amount, bonus.payment_id) == ("bonus", D("10"), payment.pk)
    assert wallet_balance(user=customer) == D("210")


def test_deposit_below_every_tier_earns_no_bonus(customer, staff):
    BonusTierFactory(min_amount=D("100"), percent=D("5"))
    payment = PaymentFactory(user=customer, amount=D("99.99"))
    payment_approve(payment_id=payment.pk, actor=staff)
    assert not Entry.objects.filter(kind=Entry.Kind.BONUS).exists()


# --- Affiliate commissions ---------------------------------------------------------------


def test_referred_customers_deposit_earns_the_referrer_a_commission(customer, staff, site_conf):
    site_conf(affiliate_percent=D("5"))
    referred = UserFactory(username="referred", referred_by=customer)
    payment = PaymentFactory(user=referred, amount=D("80"))
    payment_approve(payment_id=payment.pk, actor=staff)
    commission = Entry.objects.get(idempotency_key=f"payment:{payment.pk}:commission")
    assert (commission.user_id, commission.kind, commission.amount) == (customer.pk, "commission", D("4"))
    assert wallet_balance(user=customer) == D("4")
    assert wallet_balance(user=referred) == D("80")


def test_commission_is_on_the_deposit_not_the_bonus(customer, staff, site_conf):
    site_conf(affiliate_percent=D("10"))
    BonusTierFactory(min_amount=D("10"), percent=D("50"))
    referred = UserFactory(username="referred", referred_by=customer)
    payment = PaymentFactory(user=referred, amount=D("100"))
    payment_approve(payment_id=payment.pk, actor=staff)
    assert wallet_balance(user=customer) == D("10")


def test_unreferred_deposit_pays_no_commission(customer, staff):
    payment = PaymentFactory(user=customer, amount=D("80"))
    payment_approve(payment_id=payment.pk, actor=staff)
    assert not Entry.objects.filter(kind=Entry.Kind.COMMISSION).exists()


def test_inactive_referrer_earns_nothing(customer, staff):
    customer.is_active = False
    customer.save()
    referred = UserFactory(username="referred", referred_by=customer)
    payment_approve(payment_id=PaymentFactory(user=referred).pk, actor=staff)
    assert not Entry.objects.filter(kind=Entry.Kind.COMMISSION).exists()


def test_zero_percent_commission_writes_no_entry(customer, staff, site_conf):
    site_conf(affiliate_percent=D("0"))
    referred = UserFactory(username="referred", referred_by=customer)
    payment_approve(payment_id=PaymentFactory(user=referred).pk, actor=staff)
    assert not Entry.objects.filter(kind=Entry.Kind.COMMISSION).exists()


def test_second_approval_pays_no_second_commission_or_bonus(customer, staff):
    BonusTierFactory(min_amount=D("1"), percent=D("5"))
    referred = UserFactory(username="referred", referred_by=customer)
    payment = PaymentFactory(user=referred, amount=D("20"))
    payment_approve(payment_id=payment.pk, actor=staff)
    before = _ledger()
    payment_approve(payment_id=payment.pk, actor=staff)
    assert _ledger() == before
    assert sorted(kind for _, kind, _, _ in before) == ["bonus", "commission", "deposit"]
