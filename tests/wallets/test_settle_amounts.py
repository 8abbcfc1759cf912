"""A payment that arrives short or long (crypto), or in another currency, credits what
arrived at the quoted rate, never more than the amount asked; the bonus follows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.audit import ledger_audit
from wallets.models import Entry
from wallets.selectors import wallet_balance
from wallets.services import WalletError, payment_settle

pytestmark = pytest.mark.django_db


def credited(payment) -> dict[str, Decimal]:
    return dict(Entry.objects.filter(payment=payment).values_list("kind", "amount"))


def test_an_underpayment_credits_what_arrived_and_its_bonus():
    BonusTierFactory(min_amount=Decimal("50"), percent=Decimal("10"))
    payment = PaymentFactory(amount=Decimal("100"))
    payment_settle(payment_id=payment.pk, credit_amount=Decimal("60.123456"))
    payment.refresh_from_db()
    assert payment.credited == Decimal("60.12346")
    assert credited(payment) == {"deposit": Decimal("60.12346"), "bonus": Decimal("6.01234")}
    assert wallet_balance(user=payment.user) == Decimal("66.13580")
    assert ledger_audit() == []


def test_an_overpayment_credits_the_amount_asked_never_more():
    payment = PaymentFactory(amount=Decimal("100"))
    payment_settle(payment_id=payment.pk, credit_amount=Decimal("130"))
    payment.refresh_from_db()
    assert payment.credited == Decimal("100.00000") and credited(payment) == {"deposit": Decimal("100.00000")}


def test_nothing_arrived_credits_nothing():
    payment = PaymentFactory(amount=Decimal("100"))
    with pytest.raises(WalletError):
        payment_settle(payment_id=payment.pk, credit_amount=Decimal("0"))
    payment.refresh_from_db()
    assert payment.status == "pending" and credited(payment) == {}


def test_a_plain_settle_records_the_amount_as_credited():
    payment = PaymentFactory(amount=Decimal("25"))
    payment_settle(payment_id=payment.pk)
    payment.refresh_from_db()
    assert payment.credited == Decimal("25.00000")
