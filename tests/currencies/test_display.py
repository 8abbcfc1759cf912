"""Customers read amounts in a currency of their choice; what they are charged, the ledger and
the API stay in the panel's currency."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.template import RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import api_key_issue
from currencies.models import Currency
from orders.models import Order
from panel.currency_context import display_currency
from tests.currencies.conftest import make_currency
from tests.orders.conftest import _loopback_providers, queue, shop  # noqa: F401  (fixtures)
from tests.orders.factories import fund
from wallets.models import Entry

pytestmark = pytest.mark.django_db
D = Decimal
CHOOSE = "/currency/choose/"
LINK = "https://instagram.com/p/view"


@pytest.fixture
def eur(db):  # type: ignore[no-untyped-def]
    return make_currency("EUR", "0.9", symbol="€")


def test_the_header_offers_the_panels_and_the_enabled_currencies(client, customer, eur):
    make_currency("GBP", "0.8", enabled=False)
    client.force_login(customer)
    html = client.get(reverse("wallets:transactions")).content.decode()
    assert 'id="currency-switcher"' in html and 'action="/currency/choose/"' in html
    assert "csrfmiddlewaretoken" in html
    assert '<option value="USD" selected>' in html and '<option value="EUR">' in html
    assert '<option value="GBP"' not in html


def test_no_switcher_without_currencies(client, customer):
    client.force_login(customer)
    assert 'id="currency-switcher"' not in client.get(reverse("wallets:transactions")).content.decode()


def test_a_customers_choice_is_kept_on_the_account_across_logins(customer, eur):
    client = Client(enforce_csrf_checks=False)
    client.force_login(customer)
    response = client.post(CHOOSE, {"currency": "EUR", "next": "/wallet/transactions/"})
    assert response.status_code == 302 and response["Location"] == "/wallet/transactions/"
    assert User.objects.get(pk=customer.pk).display_currency == "EUR"
    client.logout()
    client.force_login(customer)
    html = client.get(reverse("wallets:transactions")).content.decode()
    assert '<option value="EUR" selected>' in html


def test_a_visitors_choice_is_kept_in_the_session(client, eur):
    client.post(CHOOSE, {"currency": "eur"})
    assert client.session["display_currency"] == "EUR"
    request = RequestFactory().get("/")
    request.session = client.session
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert display_currency(request)["display_currency"].code == "EUR"


def test_choosing_needs_a_post_with_csrf(customer, eur):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert client.get(CHOOSE).status_code == 405
    assert client.post(CHOOSE, {"currency": "EUR"}).status_code == 403
    assert User.objects.get(pk=customer.pk).display_currency == ""


def test_an_unknown_or_disabled_currency_is_refused_and_an_outside_next_ignored(client, customer, eur):
    make_currency("GBP", "0.8", enabled=False)
    client.force_login(customer)
    for code in ("GBP", "XXX", "<b>"):
        response = client.post(CHOOSE, {"currency": code, "next": "https://evil.example/"})
        assert response["Location"] == "/"
    assert User.objects.get(pk=customer.pk).display_currency == ""
    client.post(CHOOSE, {"currency": "EUR"})
    client.post(CHOOSE, {"currency": "USD"})  # the panel's own currency clears the choice
    assert User.objects.get(pk=customer.pk).display_currency == ""


def _render(user, text: str = "{% load panel_money %}{% money amount %}", **extra):  # type: ignore[no-untyped-def]
    request = RequestFactory().get("/")
    request.user = user
    request.session = {}
    return Template(text).render(RequestContext(request, {"amount": D("10.00000"), **extra}))


def test_amounts_are_converted_and_marked_approximate(customer, eur):
    User.objects.filter(pk=customer.pk).update(display_currency="EUR")
    customer.refresh_from_db()
    html = _render(customer)
    assert "≈ 9.00 EUR" in html and 'title="10 USD"' in html and "money-approx" in html
    # The exact form (the ledger's) is never converted.
    assert (
        _render(customer, "{% load panel_money %}{% money amount exact=True %}").strip().endswith("10.00000 USD</span>")
    )


def test_a_stale_rate_shows_the_panels_currency_never_a_wrong_number(customer, eur, settings):
    User.objects.filter(pk=customer.pk).update(display_currency="EUR")
    customer.refresh_from_db()
    Currency.objects.filter(pk=eur.pk).update(updated_at=timezone.now() - timedelta(hours=49))
    html = _render(customer)
    assert "10.00 USD" in html and "EUR" not in html and "≈" not in html


def test_the_account_partial_renders_the_choice(customer, eur):
    User.objects.filter(pk=customer.pk).update(display_currency="EUR")
    customer.refresh_from_db()
    html = _render(customer, '{% include "account/_currency.html" %}')
    assert 'id="account-currency"' in html and '<option value="EUR" selected>' in html


# --- What money does not change ------------------------------------------------------------------


def _place_through_the_page(client: Client, service_id: int, token: str) -> Order:
    client.post(reverse("orders:new"), {"service": service_id, "link": LINK, "quantity": "100", "token": token})
    return Order.objects.latest("pk")


def test_the_amount_charged_is_the_same_whatever_the_display_currency(
    client, customer, shop, queue, django_capture_on_commit_callbacks, eur
):
    service = shop.service(price="2.345678")
    fund(customer, "50")
    client.force_login(customer)
    charges = []
    for code in ("USD", "EUR"):
        client.post(CHOOSE, {"currency": code})
        with django_capture_on_commit_callbacks(execute=True):
            order = _place_through_the_page(client, service.pk, f"t-{code}")
        charges.append(order.charge)
        entry = Entry.objects.get(order_ref=order.pk, kind="charge")
        assert entry.amount == -order.charge
    assert charges[0] == charges[1] == D("0.23457")
    assert User.objects.get(pk=customer.pk).display_currency == "EUR"


def test_the_api_answers_in_the_panels_currency_whatever_the_display_currency(client, customer, eur):
    fund(customer, "12.5")
    key = api_key_issue(user=customer)
    before = json.loads(client.post("/api/v2", {"key": key, "action": "balance"}).content)
    User.objects.filter(pk=customer.pk).update(display_currency="EUR")
    client.force_login(customer)
    client.post(CHOOSE, {"currency": "EUR"})
    after = json.loads(client.post("/api/v2", {"key": key, "action": "balance"}).content)
    assert before == after and after["currency"] == "USD" and D(after["balance"]) == D("12.5")


def test_choosing_a_currency_moves_no_money(client, customer, eur):
    fund(customer, "7")
    entries = list(Entry.objects.values_list("pk", "amount", "balance_after"))
    client.force_login(customer)
    client.post(CHOOSE, {"currency": "EUR"})
    client.get(reverse("wallets:transactions"))
    assert list(Entry.objects.values_list("pk", "amount", "balance_after")) == entries
