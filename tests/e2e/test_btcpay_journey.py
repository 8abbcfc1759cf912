"""A deposit through BTCPay Server in chromium: the panel, the simulator's checkout page, back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from simulators.btcpay import DEFAULT_KEY, DEFAULT_SECRET, DEFAULT_STORE, BTCPaySimulator
from tests.e2e.conftest import Visitor
from tests.wallets.factories import BonusTierFactory
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def btcpay(settings: Any, live_server: Any) -> Iterator[BTCPaySimulator]:
    sim = BTCPaySimulator().start()
    sim.state.webhook_url = f"{live_server.url}/wallet/webhooks/btcpay/"
    settings.PANEL_BASE_URL = live_server.url
    settings.BTCPAY_URL = sim.url
    settings.BTCPAY_STORE_ID = DEFAULT_STORE
    settings.BTCPAY_API_KEY = DEFAULT_KEY
    settings.BTCPAY_WEBHOOK_SECRET = DEFAULT_SECRET
    settings.BTCPAY_ALLOW_PRIVATE_URL = True
    yield sim
    sim.stop()


def test_a_customer_pays_with_btcpay_and_gets_the_deposit_and_its_bonus(
    chromium: Any, live_server: Any, customer: Any, btcpay: BTCPaySimulator
) -> None:
    BonusTierFactory(min_amount=Decimal("50"), percent=Decimal("10"))
    client = Client()
    client.force_login(customer)
    visitor = Visitor(chromium, live_server.url, "btcpay")
    visitor.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page = visitor.page
    try:
        # 1. Choose the amount on the BTCPay card.
        page.goto("/wallet/")
        page.fill("#btcpay-amount", "100")
        page.locator("#gateway-btcpay").get_by_role("button").click()

        # 2. The invoice's checkout page at the (simulated) BTCPay Server.
        page.wait_for_url(re.compile(re.escape(btcpay.url) + r"/i/\w+$"))
        assert "100" in page.locator("body").inner_text()
        visitor.shoot("btcpay-checkout")
        page.get_by_role("button", name="Pay", exact=True).click()

        # 3. Back on the panel, the balance already credited by the signed webhook.
        page.wait_for_url(re.compile(r".*/wallet/\?checkout=success$"))
        assert page.locator("#wallet-balance").inner_text().split()[0] == "110.00"
        assert not visitor.errors
    finally:
        visitor.close()

    payment = Payment.objects.get(user=customer)
    assert payment.status == Payment.Status.PAID and payment.external_ref in btcpay.state.invoices
    assert wallet_balance(user=customer) == Decimal("110")
    assert sorted(Entry.objects.filter(payment=payment).values_list("kind", flat=True)) == ["bonus", "deposit"]
    assert {d["status"] for d in btcpay.state.deliveries} == {200}
