"""The work queue on the staff dashboard: pending manual transfers shown whole with approve and
reject buttons (POST, CSRF, the review permission, the same services as the bulk actions),
every other kind of waiting item counted and linked, in a bounded number of queries."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from orders.models import CancelRequest, Refill
from tests.factories import ProviderFactory, UserFactory
from tests.support.conftest import make_order
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db

LONG_REF = "SEPA-2026-11-29-" + "X" * 90 + "-END"


def _transfer(user: Any, amount: str = "120", ref: str = LONG_REF) -> Payment:
    return Payment.objects.create(
        user=user, gateway="manual", amount=D(amount), currency="USD", status="pending", external_ref=ref
    )


def _member(role: str) -> Any:
    user = UserFactory(username=f"queue-{role.lower()}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def admin_client(staff: Any, settings: Any) -> Client:
    settings.STAFF_REQUIRE_MFA = False
    client = Client()
    client.force_login(staff)
    return client


def test_dashboard_shows_the_whole_reference_and_the_buttons(admin_client: Client, customer: Any) -> None:
    payment = _transfer(customer)
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert LONG_REF in body
    assert reverse("admin:wallets_payment_review", args=[payment.pk]) in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "gateway__exact=manual&amp;status__exact=pending" in body


def test_approve_from_the_dashboard_credits_once(admin_client: Client, customer: Any) -> None:
    payment = _transfer(customer)
    url = reverse("admin:wallets_payment_review", args=[payment.pk])
    for _ in range(2):
        response = admin_client.post(url, {"decision": "approve"})
        assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert wallet_balance(user=customer) == D("120")
    assert Entry.objects.filter(payment=payment).count() == 1


def test_reject_keeps_the_reason_and_needs_one(admin_client: Client, customer: Any) -> None:
    payment = _transfer(customer)
    url = reverse("admin:wallets_payment_review", args=[payment.pk])
    admin_client.post(url, {"decision": "reject", "reason": "  "})
    payment.refresh_from_db()
    assert payment.status == "pending"
    admin_client.post(url, {"decision": "reject", "reason": "No such transfer on the statement"})
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.note == "No such transfer on the statement"
    assert wallet_balance(user=customer) == D("0")


def test_review_is_post_only_and_csrf_checked(staff: Any, customer: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    payment = _transfer(customer)
    url = reverse("admin:wallets_payment_review", args=[payment.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get(url).status_code == 405
    assert client.post(url, {"decision": "approve"}).status_code == 403
    payment.refresh_from_db()
    assert payment.status == "pending"


@pytest.mark.parametrize(
    ("role", "allowed"), [("Finance", True), ("Owner", True), ("Support", False), ("Catalogue", False)]
)
def test_only_finance_and_owner_review(role: str, allowed: bool, customer: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    payment = _transfer(customer)
    client = Client()
    client.force_login(_member(role))
    body = client.get(reverse("admin:index")).content.decode()
    url = reverse("admin:wallets_payment_review", args=[payment.pk])
    assert (url in body) is allowed
    response = client.post(url, {"decision": "approve"})
    payment.refresh_from_db()
    if allowed:
        assert response.status_code == 302 and payment.status == "paid"
    else:
        assert response.status_code == 403 and payment.status == "pending"
        assert wallet_balance(user=customer) == D("0")


def test_every_kind_of_waiting_item_links_to_its_filtered_list(admin_client: Client, customer: Any) -> None:
    provider = ProviderFactory(paused_reason="API key refused")
    ProviderFactory(balance=D("1"), low_balance_alert=D("10"))
    order = make_order(customer, state="sent", provider=provider, margin_flag=True)
    Refill.objects.create(order=order, user=customer, provider=provider, state="unknown")
    CancelRequest.objects.create(order=order, user=customer, provider=provider, state="unknown")
    body = admin_client.get(reverse("admin:index")).content.decode()
    for link in (
        reverse("admin:orders_refill_changelist") + "?state__exact=unknown",
        reverse("admin:orders_cancelrequest_changelist") + "?state__exact=unknown",
        reverse("admin:orders_order_changelist") + "?margin_flag__exact=1",
        reverse("admin:providers_provider_changelist") + "?attention=paused",
        reverse("admin:providers_provider_changelist") + "?attention=low",
    ):
        assert f'href="{link}"' in body, link
        assert admin_client.get(link).status_code == 200
    paused = admin_client.get(reverse("admin:providers_provider_changelist") + "?attention=paused")
    assert paused.context["cl"].result_count == 1


def test_dashboard_queries_do_not_grow_with_the_queue(
    admin_client: Client, customer: Any, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(reverse("admin:index")).status_code == 200
        return len(ctx.captured_queries)

    _transfer(customer)
    make_order(customer, state="unknown")
    queries()  # the first request reads the panel configuration into the cache
    few = queries()
    for n in range(12):
        user = UserFactory(username=f"payer{n}")
        _transfer(user, ref=f"REF-{n}")
        make_order(user, state="unknown", margin_flag=True)
    assert queries() == few
    assert few <= 40
