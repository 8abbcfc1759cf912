"""A customer tops up with PayPal in a real browser: amount, PayPal's approval page (the local
simulator), Pay, back on the panel, the order captured and the balance credited with its bonus."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from simulators.paypal import PayPalSimulator
from tests.wallets.factories import BonusTierFactory
from wallets.models import Payment
from wallets.selectors import wallet_balance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def paypal(settings: Any, live_server: Any) -> Iterator[PayPalSimulator]:
    simulator = PayPalSimulator(webhook_url=f"{live_server.url}/wallet/webhooks/paypal/").start()
    settings.PANEL_BASE_URL = live_server.url
    settings.PAYPAL_API_URL = simulator.base_url
    settings.PAYPAL_CLIENT_ID = simulator.client_id
    settings.PAYPAL_CLIENT_SECRET = simulator.client_secret
    settings.PAYPAL_WEBHOOK_ID = simulator.webhook_id
    settings.PAYPAL_ALLOW_PRIVATE_URLS = True
    yield simulator
    simulator.stop()


def test_a_customer_pays_with_paypal_and_is_credited_with_the_bonus(
    chromium: Any, live_server: Any, customer: Any, paypal: PayPalSimulator
) -> None:
    BonusTierFactory(min_amount=Decimal("100"), percent=Decimal("10"))
    client = Client()
    client.force_login(customer)
    context = chromium.new_context(base_url=live_server.url)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/wallet/")
        page.fill("#paypal-amount", "150")
        page.get_by_role("button", name="Pay with PayPal").click()
        page.wait_for_url(f"{paypal.base_url}/checkoutnow*")
        assert "150.00 USD" in page.inner_text("body")
        page.get_by_role("button", name="Pay").click()
        page.wait_for_url(f"{live_server.url}/wallet/*")
        assert "credited" in page.inner_text("body")
    finally:
        context.close()
    payment = Payment.objects.get(user=customer)
    assert payment.status == Payment.Status.PAID
    assert paypal.orders[payment.external_ref]["status"] == "COMPLETED"
    assert wallet_balance(user=customer) == Decimal("165")
