"""A customer switches the display currency in the header without JavaScript's help; the page
fits at 1280 and 360 px, and the choice is back after logging in again."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts.models import User
from currencies.models import Currency
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def login(visitor: Any, username: str) -> None:
    visitor.go("/accounts/login/")
    visitor.page.fill("[name=login]", username)
    visitor.page.fill("[name=password]", PASSWORD)
    visitor.page.get_by_role("button", name="Sign In").click()
    visitor.page.wait_for_load_state()


def test_a_customer_picks_euros_in_the_header_and_keeps_them(visitors: Any, settings: Any) -> None:
    settings.PANEL_CURRENCY = "USD"
    Currency.objects.create(code="EUR", name="Euro", symbol="€", rate=Decimal("0.9"), updated_at=timezone.now())
    customer = UserFactory(username="erika", email="erika@example.com")
    EmailAddress.objects.create(user=customer, email=customer.email, verified=True, primary=True)

    erika = visitors("erika")
    login(erika, "erika")
    erika.go("/wallet/transactions/")
    erika.page.select_option("#currency-select", "EUR")
    erika.page.locator("#currency-switcher button[type=submit]").click()
    erika.page.wait_for_load_state()
    assert erika.page.url.endswith("/wallet/transactions/")
    assert erika.page.locator("#currency-select").input_value() == "EUR"
    assert User.objects.get(pk=customer.pk).display_currency == "EUR"
    assert erika.page.evaluate(NO_SIDEWAYS)
    erika.shoot("currency-switcher")
    erika.page.set_viewport_size({"width": 360, "height": 800})
    assert erika.page.evaluate(NO_SIDEWAYS)
    assert not erika.page.locator("#currency-switcher").is_visible()  # on a phone: the account page

    erika.page.set_viewport_size({"width": 1280, "height": 900})
    erika.page.locator("form[action='/accounts/logout/'] button").first.click()
    erika.page.wait_for_load_state()
    login(erika, "erika")
    erika.go("/wallet/transactions/")
    assert erika.page.locator("#currency-select").input_value() == "EUR"
    assert not erika.errors
