""" "Log in as" a customer: only with the permission (Owner, Support), never onto staff or a
superuser, recorded, a banner on every page with a way back, and no money or secret changes
while it lasts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.impersonation import SESSION_KEY
from accounts.models import ApiKey, Impersonation
from accounts.services import api_key_issue
from tests.factories import PASSWORD, UserFactory
from wallets.models import Payment

pytestmark = pytest.mark.django_db


def _member(role: str) -> Any:
    user = UserFactory(username=f"imp-{role.lower()}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def _client(user: Any, settings: Any) -> Client:
    settings.STAFF_REQUIRE_MFA = False
    client = Client()
    client.force_login(user)
    return client


def _start(client: Client, target: Any) -> Any:
    return client.post(reverse("admin:accounts_user_impersonate", args=[target.pk]))


@pytest.mark.parametrize(
    ("role", "allowed"), [("Owner", True), ("Support", True), ("Finance", False), ("Catalogue", False)]
)
def test_only_roles_with_the_permission_log_in_as(role: str, allowed: bool, customer: Any, settings: Any) -> None:
    client = _client(_member(role), settings)
    response = _start(client, customer)
    if allowed:
        assert response.status_code == 302
        assert client.get(reverse("accounts:account")).wsgi_request.user == customer
        record = Impersonation.objects.get()
        assert record.customer == customer and record.ended_at is None and record.expires_at > timezone.now()
    else:
        assert response.status_code == 403 and not Impersonation.objects.exists()


def test_never_onto_staff_a_superuser_or_oneself(staff: Any, settings: Any) -> None:
    support = _member("Support")
    other_staff = UserFactory(username="colleague", is_staff=True)
    client = _client(support, settings)
    for target in (staff, other_staff, support):
        assert _start(client, target).status_code == 403
    assert not Impersonation.objects.exists()
    assert client.get(reverse("admin:index")).wsgi_request.user == support


def test_get_is_refused(customer: Any, staff: Any, settings: Any) -> None:
    client = _client(staff, settings)
    assert client.get(reverse("admin:accounts_user_impersonate", args=[customer.pk])).status_code == 405


def test_banner_on_every_page_and_return_to_the_admin(customer: Any, staff: Any, settings: Any) -> None:
    client = _client(staff, settings)
    _start(client, customer)
    for name in ("orders:new", "accounts:account", "wallets:add_funds", "catalog:services"):
        body = client.get(reverse(name)).content.decode()
        assert 'id="impersonation-banner"' in body, name
        assert reverse("accounts:impersonate_stop") in body
    response = client.post(reverse("accounts:impersonate_stop"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:panel_customer", args=[customer.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200 and page.wsgi_request.user == staff
    record = Impersonation.objects.get()
    assert record.ended_how == "returned" and record.ended_at is not None
    assert SESSION_KEY not in client.session
    assert 'id="impersonation-banner"' not in client.get(reverse("accounts:account")).content.decode()


def test_no_money_password_or_key_changes_while_impersonating(customer: Any, staff: Any, settings: Any) -> None:
    api_key_issue(user=customer)
    digest = ApiKey.objects.get(user=customer).digest
    client = _client(staff, settings)
    _start(client, customer)
    refused = [
        ("post", reverse("api:key_issue"), {}),
        ("post", reverse("api:key_revoke"), {}),
        ("post", reverse("wallets:deposit", args=["manual"]), {"amount": "50", "reference": "x"}),
        (
            "post",
            reverse("account_change_password"),
            {"oldpassword": PASSWORD, "password1": "N3w-pass-word!", "password2": "N3w-pass-word!"},
        ),
        ("get", reverse("account_change_password"), {}),
        ("post", reverse("account_email"), {"action_add": "", "email": "thief@example.com"}),
    ]
    for method, url, data in refused:
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, url
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    assert ApiKey.objects.get(user=customer).digest == digest
    assert not Payment.objects.exists()
    # the pages themselves still show what the customer sees
    assert client.get(reverse("wallets:add_funds")).status_code == 200


def test_an_expired_session_ends_and_is_recorded(customer: Any, staff: Any, settings: Any) -> None:
    client = _client(staff, settings)
    _start(client, customer)
    session = client.session
    state = session[SESSION_KEY]
    state["until"] = (timezone.now() - dt.timedelta(seconds=1)).isoformat()
    session[SESSION_KEY] = state
    session.save()
    response = client.get(reverse("orders:new"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    assert Impersonation.objects.get().ended_how == "expired"
    assert not client.get(reverse("accounts:account")).wsgi_request.user.is_authenticated


def test_customer_page_shows_everything_in_one_place(customer: Any, staff: Any, settings: Any) -> None:
    from tests.support.conftest import make_order

    make_order(customer, charge=D("2.50000"))
    Payment.objects.create(user=customer, gateway="manual", amount=D("7"), currency="USD", external_ref="REF-77")
    client = _client(staff, settings)
    change = client.get(reverse("admin:accounts_user_change", args=[customer.pk])).content.decode()
    assert reverse("admin:panel_customer", args=[customer.pk]) in change
    assert reverse("admin:accounts_user_impersonate", args=[customer.pk]) in change
    body = client.get(reverse("admin:panel_customer", args=[customer.pk])).content.decode()
    for section in (
        "cust-balance",
        "cust-debt",
        "cust-status",
        "cust-rates",
        "cust-orders",
        "cust-payments",
        "cust-tickets",
        "cust-ledger",
    ):
        assert f'id="{section}"' in body, section
    assert "REF-77" in body


def test_customer_page_is_staff_only(customer: Any, other_customer: Any, settings: Any) -> None:
    client = _client(other_customer, settings)
    assert client.get(reverse("admin:panel_customer", args=[customer.pk])).status_code in (302, 403)
