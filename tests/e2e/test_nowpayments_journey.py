"""A customer tops up with crypto in a real browser: the panel's form, the NOWPayments
simulator's invoice page, "Pay", the signed IPNs to the live server, back to the panel with
the balance credited and its bonus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress

from simulators.nowpayments import NowPaymentsSimulator
from tests.factories import PASSWORD, UserFactory
from tests.wallets.factories import BonusTierFactory
from wallets.models import Payment
from wallets.selectors import wallet_balance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def nowpayments(settings: Any, live_server: Any) -> Iterator[NowPaymentsSimulator]:
    simulator = NowPaymentsSimulator(api_key="e2e-key", ipn_secret="e2e-ipn-secret").start()
    settings.NOWPAYMENTS_API_URL = simulator.api_url
    settings.NOWPAYMENTS_API_KEY = "e2e-key"
    settings.NOWPAYMENTS_IPN_SECRET = "e2e-ipn-secret"
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    # The invoice's callback and return addresses are built from the panel's public address.
    settings.PANEL_BASE_URL = live_server.url
    try:
        yield simulator
    finally:
        simulator.stop()


def test_a_customer_pays_a_nowpayments_invoice_and_gets_the_deposit_with_its_bonus(
    visitors: Any, nowpayments: NowPaymentsSimulator
) -> None:
    BonusTierFactory(min_amount=Decimal("50"), percent=Decimal("10"))
    user = UserFactory(username="carol", email="carol@example.com")
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    carol = visitors("carol")
    carol.go("/accounts/login/")
    carol.page.fill("[name=login]", "carol")
    carol.page.fill("[name=password]", PASSWORD)
    carol.page.get_by_role("button", name="Sign In").click()
    carol.page.wait_for_url("**/orders/new/")

    carol.go("/wallet/")
    carol.page.fill("#nowpayments-amount", "100")
    carol.page.get_by_role("button", name="Pay with crypto").click()
    carol.page.wait_for_url(lambda url: url.startswith(f"{nowpayments.url}/payment/?iid="))
    assert "100" in carol.page.content()
    payment = Payment.objects.get(user=user)
    assert payment.status == Payment.Status.PENDING

    carol.page.get_by_role("button", name="Pay", exact=True).click()
    carol.page.wait_for_url(lambda url: url.endswith("/wallet/?checkout=success"))
    deadline = time.monotonic() + 15
    while wallet_balance(user=user) != Decimal("110") and time.monotonic() < deadline:
        time.sleep(0.1)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.pay_currency == "BTC"
    assert wallet_balance(user=user) == Decimal("110")
    carol.go("/wallet/")
    assert carol.page.locator("#balance").inner_text().split()[-2:] == ["110.00", "USD"]
    assert {d["code"] for d in nowpayments.deliveries} == {200}
    assert carol.errors == []
