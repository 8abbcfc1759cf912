from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import factory

from tests.factories import UserFactory
from wallets.models import BonusTier, Entry, Payment
from wallets.services import wallet_credit


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    user = factory.SubFactory(UserFactory)
    gateway = "manual"
    amount = Decimal("10.00000")
    currency = "USD"
    external_ref = factory.Sequence(lambda n: f"transfer-{n}")


class BonusTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BonusTier

    min_amount = Decimal("100")
    percent = Decimal("5")
    enabled = True


def fund(user, amount: str | Decimal) -> Entry:  # type: ignore[no-untyped-def]
    """Give a user money through the ledger, as a deposit would."""
    return wallet_credit(
        user=user, amount=Decimal(amount), kind=Entry.Kind.DEPOSIT, idempotency_key=f"test:{uuid4().hex}"
    )
