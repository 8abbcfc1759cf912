from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from tests.wallets.factories import BonusTierFactory, PaymentFactory, fund
from wallets import services
from wallets.models import BonusTier, Entry, Payment, Wallet
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db
D = Decimal
ADJUST = "admin:wallets_wallet_adjust"


def _adjust_key(staff_client: Client) -> str:
    response = staff_client.get(reverse(ADJUST))
    return response.context["form"].initial["key"]


# --- Money is read-only --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["wallet", "entry", "payment", "affiliate"])
def test_money_models_cannot_be_added_in_the_admin(staff_client, model):
    assert staff_client.get(reverse(f"admin:wallets_{model}_add")).status_code == 403
    assert staff_client.get(reverse(f"admin:wallets_{model}_changelist")).status_code == 200


def test_an_entry_cannot_be_changed_or_deleted_in_the_admin(staff_client, customer):
    entry = fund(customer, "10")
    change = reverse("admin:wallets_entry_change", args=[entry.pk])
    assert staff_client.get(change).status_code == 200  # view only
    staff_client.post(change, {"amount": "1000", "memo": "x"})
    assert staff_client.post(reverse("admin:wallets_entry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert Entry.objects.get(pk=entry.pk).amount == D("10")


def test_a_wallet_balance_cannot_be_edited_in_the_admin(staff_client, customer):
    fund(customer, "10")
    staff_client.post(reverse("admin:wallets_wallet_change", args=[customer.pk]), {"balance": "999"})
    assert wallet_balance(user=customer) == D("10")


# --- Add or deduct funds -------------------------------------------------------------------


def test_staff_add_funds_with_a_reason(staff_client, staff, customer):
    data = {"user": "customer", "amount": "12.5", "reason": "Compensation, ticket 9", "key": _adjust_key(staff_client)}
    response = staff_client.post(reverse(ADJUST), data)
    assert response.status_code == 302
    entry = Entry.objects.get(user=customer)
    assert (entry.kind, entry.amount, entry.actor, entry.memo) == (
        "adjustment",
        D("12.5"),
        staff,
        "Compensation, ticket 9",
    )


def test_submitting_the_adjust_form_twice_adjusts_once(staff_client, customer):
    data = {"user": "customer", "amount": "5", "reason": "x", "key": _adjust_key(staff_client)}
    staff_client.post(reverse(ADJUST), data)
    staff_client.post(reverse(ADJUST), data)
    assert wallet_balance(user=customer) == D("5")


def test_staff_deduct_funds(staff_client, customer):
    fund(customer, "10")
    data = {"user": "customer", "amount": "-4", "reason": "Chargeback", "key": _adjust_key(staff_client)}
    assert staff_client.post(reverse(ADJUST), data).status_code == 302
    assert wallet_balance(user=customer) == D("6")


def test_deducting_more_than_the_balance_shows_the_error_and_changes_nothing(staff_client, customer):
    fund(customer, "1")
    data = {"user": "customer", "amount": "-4", "reason": "Chargeback", "key": _adjust_key(staff_client)}
    response = staff_client.post(reverse(ADJUST), data)
    assert response.status_code == 200
    assert b"Not enough funds on balance" in response.content
    assert wallet_balance(user=customer) == D("1")
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"user": "customer", "amount": "5", "reason": ""},
        {"user": "customer", "amount": "0", "reason": "x"},
        {"user": "nobody", "amount": "5", "reason": "x"},
        {"user": "customer", "amount": "5", "reason": "x", "key": "payment:1:deposit"},
    ],
)
def test_bad_adjust_forms_change_nothing(staff_client, customer, data):
    data = {"key": _adjust_key(staff_client), **data}
    assert staff_client.post(reverse(ADJUST), data).status_code == 200
    assert not Entry.objects.exists()


def test_customers_cannot_reach_the_adjust_page(customer_client, customer):
    response = customer_client.post(reverse(ADJUST), {"user": "customer", "amount": "5", "reason": "x"})
    assert response.status_code == 403
    assert not Entry.objects.exists()


def test_staff_without_the_permission_cannot_adjust(customer):
    clerk = UserFactory(username="clerk", is_staff=True)
    client = Client()
    client.force_login(clerk)
    response = client.post(
        reverse(ADJUST), {"user": "customer", "amount": "5", "reason": "x", "key": "adjust:" + "0" * 32}
    )
    assert response.status_code == 403
    assert not Entry.objects.exists()


def test_wallet_action_opens_the_adjust_form_for_that_user(staff_client, customer):
    fund(customer, "1")
    response = staff_client.post(
        reverse("admin:wallets_wallet_changelist"),
        {"action": "adjust_funds", "_selected_action": [customer.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse(ADJUST) + "?user=customer"


# --- Reviewing manual payments -----------------------------------------------------------


def _act(staff_client: Client, action: str, *payments: Payment):  # type: ignore[no-untyped-def]
    return staff_client.post(
        reverse("admin:wallets_payment_changelist"),
        {"action": action, "_selected_action": [p.pk for p in payments]},
        follow=True,
    )


def test_approve_action_credits_once_even_when_run_twice(staff_client, customer):
    payment = PaymentFactory(user=customer, amount=D("30"))
    _act(staff_client, "approve_selected", payment)
    _act(staff_client, "approve_selected", payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert wallet_balance(user=customer) == D("30")


def test_reject_action_fails_the_payment(staff_client, customer):
    payment = PaymentFactory(user=customer)
    _act(staff_client, "reject_selected", payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert not Entry.objects.exists()


def test_staff_cannot_approve_their_own_payment_in_the_admin(staff_client, staff):
    payment = PaymentFactory(user=staff)
    response = _act(staff_client, "approve_selected", payment)
    assert b"Nobody can approve their own payment" in response.content
    assert wallet_balance(user=staff) == D("0")


def test_reviewing_needs_the_review_permission(customer):
    clerk = UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = Client()
    client.force_login(clerk)
    payment = PaymentFactory(user=customer)
    _act(client, "approve_selected", payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    clerk.user_permissions.add(Permission.objects.get(codename="review_payment"))
    client.force_login(clerk)
    _act(client, "approve_selected", payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID


def test_payment_list_filters_by_gateway_status_and_date(staff_client, customer):
    PaymentFactory(user=customer)
    PaymentFactory(user=customer, gateway="stripe", external_ref="cs_1")
    url = reverse("admin:wallets_payment_changelist")
    response = staff_client.get(
        url, {"gateway__exact": "stripe", "status__exact": "pending", "created_at__gte": "2000-01-01 00:00:00+00:00"}
    )
    assert response.status_code == 200
    assert [p.gateway for p in response.context["cl"].result_list] == ["stripe"]


def test_bonus_tiers_are_managed_in_the_admin(staff_client):
    response = staff_client.post(
        reverse("admin:wallets_bonustier_add"), {"min_amount": "100", "percent": "5", "enabled": "on"}
    )
    assert response.status_code == 302
    tier = BonusTier.objects.get()
    assert (tier.min_amount, tier.percent, tier.enabled) == (D("100"), D("5"), True)
    BonusTierFactory(min_amount=D("200"))
    assert staff_client.get(reverse("admin:wallets_bonustier_changelist")).status_code == 200


def test_wallet_list_shows_balances(staff_client, customer):
    fund(customer, "42")
    response = staff_client.get(reverse("admin:wallets_wallet_changelist"))
    assert b"42.00000" in response.content
    assert Wallet.objects.count() == 1


def test_payment_list_searches_the_gateway_reference_and_the_charge_reference(staff_client, customer):
    wanted = PaymentFactory(user=customer, gateway="stripe", external_ref="cs_wanted", charge_ref="pi_wanted")
    PaymentFactory(user=customer, gateway="stripe", external_ref="cs_other", charge_ref="pi_other")
    url = reverse("admin:wallets_payment_changelist")
    for query in ("cs_wanted", "pi_wanted"):
        response = staff_client.get(url, {"q": query})
        assert [p.pk for p in response.context["cl"].result_list] == [wanted.pk]


def test_payment_list_filters_refunded_payments(staff_client, customer):
    refunded = PaymentFactory(user=customer)
    services.payment_settle(payment_id=refunded.pk)
    services.payment_reverse(payment_id=refunded.pk, amount=D("4"), kind="reversal", reason="r", reference="re_1")
    PaymentFactory(user=customer)
    response = staff_client.get(reverse("admin:wallets_payment_changelist"), {"status__exact": "partly_refunded"})
    assert [p.pk for p in response.context["cl"].result_list] == [refunded.pk]


def test_wallet_list_filters_customers_who_owe(staff_client, customer, other_customer):
    fund(other_customer, "5")
    payment = PaymentFactory(user=customer)
    services.payment_settle(payment_id=payment.pk)
    services.wallet_debit(user=customer, amount=D("10"), kind=Entry.Kind.ADJUSTMENT, idempotency_key="x", memo="x")
    services.payment_reverse(payment_id=payment.pk, amount=D("10"), kind="chargeback", reason="d", reference="dp")
    response = staff_client.get(reverse("admin:wallets_wallet_changelist"), {"owes": "yes"})
    assert [w.user_id for w in response.context["cl"].result_list] == [customer.pk]
    assert b"10.00000" in response.content
