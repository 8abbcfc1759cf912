"""A customer who owes a chargeback sees it on every page, at desktop and phone widths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress

from tests.factories import PASSWORD, UserFactory
from wallets.models import Entry, Payment
from wallets.services import payment_reverse, payment_settle, wallet_debit

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_owing_customer_sees_the_debt_in_the_top_bar_and_on_the_add_funds_page(visitors: Any, settings: Any) -> None:
    customer = UserFactory(username="owen", email="owen@example.com")
    EmailAddress.objects.create(user=customer, email=customer.email, verified=True, primary=True)
    payment = Payment.objects.create(
        user=customer, gateway="stripe", amount=Decimal("25"), currency="USD", external_ref="cs_test_a1b2c3d4e5f6"
    )
    payment_settle(payment_id=payment.pk)
    wallet_debit(user=customer, amount=Decimal("20"), kind=Entry.Kind.ADJUSTMENT, idempotency_key="spent", memo="x")
    payment_reverse(payment_id=payment.pk, amount=Decimal("25"), kind="chargeback", reason="dispute", reference="dp_1")

    owen = visitors("owen")
    owen.go("/accounts/login/")
    owen.page.fill("[name=login]", "owen")
    owen.page.fill("[name=password]", PASSWORD)
    owen.page.get_by_role("button", name="Sign In").click()
    owen.page.wait_for_load_state()
    owen.go("/wallet/")

    assert "20.00" in owen.page.locator("#debt").inner_text()
    assert "You owe 20.00 USD" in owen.page.locator("#wallet-debt").inner_text()
    assert "Refunded" in owen.page.locator("#payment-history").inner_text()
    owen.shoot("add-funds-owing")
    owen.page.set_viewport_size({"width": 360, "height": 800})
    assert owen.page.locator("#debt").is_visible()
    # On a phone the payment history is one card per payment: its status still shows.
    assert owen.page.locator("#payment-history").is_visible()
    assert "Refunded" in owen.page.locator("#payment-history").inner_text()
    assert not owen.errors
