from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.wallets.factories import BonusTierFactory, PaymentFactory, fund
from wallets.models import Entry, GatewaySetting, Payment
from wallets.selectors import wallet_balance
from wallets.services import wallet_debit
from wallets.views import ENTRIES_PER_PAGE

pytestmark = pytest.mark.django_db
D = Decimal

PAGES = [
    ("get", "wallets:add_funds", False),
    ("post", "wallets:deposit_manual", False),
    ("post", "wallets:deposit_stripe", False),
    ("get", "wallets:bonus_preview", False),
    ("get", "wallets:transactions", False),
    ("get", "wallets:affiliates", False),
    ("get", "wallets:payment_detail", True),
    ("post", "wallets:payment_cancel", True),
]


@pytest.mark.parametrize(("method", "name", "needs_pk"), PAGES)
def test_every_page_needs_login(client, customer, method, name, needs_pk):
    payment = PaymentFactory(user=customer)
    url = reverse(name, args=[payment.pk] if needs_pk else [])
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert list(Payment.objects.values_list("pk", "status")) == [(payment.pk, Payment.Status.PENDING)]


@pytest.mark.parametrize(
    ("name", "needs_pk"),
    [("wallets:deposit_manual", False), ("wallets:deposit_stripe", False), ("wallets:payment_cancel", True)],
)
def test_get_on_a_post_only_url_is_405(customer_client, customer, name, needs_pk):
    url = reverse(name, args=[PaymentFactory(user=customer).pk] if needs_pk else [])
    assert customer_client.get(url).status_code == 405
    assert not Payment.objects.exclude(status=Payment.Status.PENDING).exists()


@pytest.mark.parametrize("name", ["wallets:add_funds", "wallets:transactions", "wallets:affiliates"])
def test_post_on_a_read_only_page_is_405(customer_client, name):
    assert customer_client.post(reverse(name)).status_code == 405


# --- Ownership ---------------------------------------------------------------------------


def test_another_customers_payment_is_404(customer_client, other_customer):
    payment = PaymentFactory(user=other_customer)
    assert customer_client.get(reverse("wallets:payment_detail", args=[payment.pk])).status_code == 404


def test_cancelling_another_customers_transfer_is_404_and_changes_nothing(customer_client, other_customer):
    payment = PaymentFactory(user=other_customer)
    assert customer_client.post(reverse("wallets:payment_cancel", args=[payment.pk])).status_code == 404
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_payment_detail_shows_own_payment_and_its_credits(customer_client, customer, staff):
    from wallets.services import payment_approve

    payment = PaymentFactory(user=customer, amount=D("12"), external_ref="MY-REF")
    payment_approve(payment_id=payment.pk, actor=staff)
    response = customer_client.get(reverse("wallets:payment_detail", args=[payment.pk]))
    assert response.status_code == 200
    assert b"MY-REF" in response.content
    assert b"12.00000" in response.content


def test_customer_cancels_own_transfer_through_the_page(customer_client, customer):
    payment = PaymentFactory(user=customer)
    response = customer_client.post(reverse("wallets:payment_cancel", args=[payment.pk]))
    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED


def test_cancelling_a_paid_transfer_changes_nothing(customer_client, customer, staff):
    from wallets.services import payment_approve

    payment = PaymentFactory(user=customer, amount=D("3"))
    payment_approve(payment_id=payment.pk, actor=staff)
    response = customer_client.post(reverse("wallets:payment_cancel", args=[payment.pk]), follow=True)
    assert b"Only a pending transfer" in response.content
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("3")


# --- Add funds -----------------------------------------------------------------------------


def test_add_funds_shows_gateways_limits_tiers_and_only_own_payments(
    customer_client, customer, other_customer, manual_on, stripe_on
):
    BonusTierFactory(min_amount=D("100"), percent=D("7"))
    PaymentFactory(user=customer, amount=D("11.11"))
    PaymentFactory(user=other_customer, amount=D("99.99"))
    response = customer_client.get(reverse("wallets:add_funds"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Manual transfer" in html and "Card (Stripe)" in html
    assert "From 1.00 to 10,000.00 USD" in html and "From 5.00 to 5,000.00 USD" in html
    assert "+7%" in html
    assert "11.11" in html
    assert "99.99" not in html
    assert 'src="/static/wallets/bonus-preview.js"' in html
    # Scripts only from our own origin (the CSP allows nothing else).
    assert not re.search(r'<script[^>]+src="(https?:)?//', html)


def test_add_funds_without_gateways_says_so(customer_client, settings):
    GatewaySetting.objects.update_or_create(code="manual", defaults={"enabled": False})
    settings.STRIPE_SECRET_KEY = ""
    response = customer_client.get(reverse("wallets:add_funds"))
    assert b"No payment method is available" in response.content


def test_checkout_return_shows_a_message(customer_client):
    response = customer_client.get(reverse("wallets:add_funds") + "?checkout=success")
    assert b"as soon as the payment is confirmed" in response.content


def test_manual_deposit_through_the_page(customer_client, customer, manual_on):
    response = customer_client.post(reverse("wallets:deposit_manual"), {"amount": "20", "reference": "TX-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("wallets:add_funds")
    payment = Payment.objects.get()
    assert (payment.user, payment.amount, payment.external_ref, payment.status) == (
        customer,
        D("20"),
        "TX-1",
        "pending",
    )
    assert wallet_balance(user=customer) == D("0")


@pytest.mark.parametrize(
    "data",
    [
        {"amount": "", "reference": "x"},
        {"amount": "abc", "reference": "x"},
        {"amount": "5"},
        {"amount": "-5", "reference": "x"},
    ],
)
def test_bad_manual_deposit_form_is_400_and_creates_nothing(customer_client, manual_on, data):
    assert customer_client.post(reverse("wallets:deposit_manual"), data).status_code == 400
    assert not Payment.objects.exists()


def test_manual_deposit_over_the_limit_is_refused_with_a_message(customer_client, manual_on):
    response = customer_client.post(reverse("wallets:deposit_manual"), {"amount": "20000", "reference": "x"})
    assert response.status_code == 400
    assert b"The maximum deposit is 10000" in response.content
    assert not Payment.objects.exists()


def test_bad_card_deposit_form_is_400_and_creates_nothing(customer_client, stripe_on):
    assert customer_client.post(reverse("wallets:deposit_stripe"), {"amount": "x"}).status_code == 400
    assert not Payment.objects.exists()


def test_bonus_preview_names_the_bonus(customer_client):
    BonusTierFactory(min_amount=D("100"), percent=D("5"))
    url = reverse("wallets:bonus_preview")
    assert customer_client.get(url, {"amount": "200"}).json() == {
        "bonus": "10.00000",
        "percent": "5.00",
        "text": "You get a 5.00% bonus: +10.00 USD.",
    }
    assert customer_client.get(url, {"amount": "50"}).json()["bonus"] == "0"
    assert customer_client.get(url, {"amount": "junk"}).json()["bonus"] is None
    assert customer_client.get(url, {"amount": "-1"}).json()["bonus"] is None


# --- Transactions --------------------------------------------------------------------------


def _ids_on_page(response) -> list[int]:  # type: ignore[no-untyped-def]
    return [row.record.pk for row in response.context["table"].rows]


def test_transactions_show_own_entries_newest_first(customer_client, customer, other_customer):
    fund(customer, "10")
    wallet_debit(
        user=customer, amount=D("2.5"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge", memo="Order #1"
    )
    fund(other_customer, "777")
    response = customer_client.get(reverse("wallets:transactions"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Order #1" in html and "-2.50000" in html and "7.50000" in html
    assert "777" not in html
    ids = _ids_on_page(response)
    assert ids == sorted(ids, reverse=True)
    assert set(Entry.objects.filter(pk__in=ids).values_list("user_id", flat=True)) == {customer.pk}


def test_transactions_page_by_key_without_counting(customer_client, customer):
    for _ in range(ENTRIES_PER_PAGE * 2 + 5):
        fund(customer, "1")
    all_ids = list(Entry.objects.filter(user=customer).order_by("-id").values_list("id", flat=True))
    url = reverse("wallets:transactions")
    with CaptureQueriesContext(connection) as queries:
        first = customer_client.get(url)
    assert not any("COUNT(" in q["sql"].upper() and "wallets_entry" in q["sql"] for q in queries.captured_queries)
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    assert _ids_on_page(first) == all_ids[:ENTRIES_PER_PAGE]
    second = customer_client.get(url, {"before": first.context["older"]})
    assert _ids_on_page(second) == all_ids[ENTRIES_PER_PAGE : ENTRIES_PER_PAGE * 2]
    third = customer_client.get(url, {"before": second.context["older"]})
    assert _ids_on_page(third) == all_ids[ENTRIES_PER_PAGE * 2 :]
    assert third.context["older"] is None
    back = customer_client.get(url, {"after": third.context["newer"]})
    assert _ids_on_page(back) == all_ids[ENTRIES_PER_PAGE : ENTRIES_PER_PAGE * 2]


def test_transactions_filter_by_kind(customer_client, customer):
    fund(customer, "10")
    wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    response = customer_client.get(reverse("wallets:transactions"), {"kind": "charge"})
    assert [Entry.objects.get(pk=pk).kind for pk in _ids_on_page(response)] == ["charge"]


def test_transactions_ignore_junk_page_keys(customer_client, customer):
    fund(customer, "1")
    response = customer_client.get(reverse("wallets:transactions"), {"before": "x'; DROP", "after": "-1"})
    assert response.status_code == 200
    assert len(_ids_on_page(response)) == 1


# --- Affiliates ----------------------------------------------------------------------------


def test_affiliates_page_shows_the_link_and_stats(customer_client, customer, settings):
    settings.PANEL_BASE_URL = "https://panel.example"
    response = customer_client.get(reverse("wallets:affiliates"))
    assert response.status_code == 200
    code = customer.affiliate.code
    assert f"https://panel.example/wallet/ref/{code}/" in response.content.decode()
    stats = response.context["stats"]
    assert (stats.visits, stats.signups, stats.deposits_count, stats.commissions_total) == (0, 0, 0, D("0"))


def test_each_customer_has_their_own_code(customer, other_customer):
    first, second = Client(), Client()
    first.force_login(customer)
    second.force_login(other_customer)
    first.get(reverse("wallets:affiliates"))
    second.get(reverse("wallets:affiliates"))
    first.get(reverse("wallets:affiliates"))
    assert customer.affiliate.code != other_customer.affiliate.code
