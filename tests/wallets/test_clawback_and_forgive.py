"""A deposit taken back takes its bonus and its referrer's commission with it, in proportion;
staff may forgive what a customer owes, which unblocks their orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.orders.conftest import _loopback_providers, queue, shop  # noqa: F401  (fixtures)
from tests.wallets.factories import BonusTierFactory, PaymentFactory
from wallets.audit import ledger_audit
from wallets.models import Entry, Wallet
from wallets.reversals import DebtError, debt_forgive, payment_reinstate
from wallets.selectors import wallet_balance, wallet_debt
from wallets.services import payment_reverse, payment_settle, wallet_debit

pytestmark = pytest.mark.django_db
D = Decimal


def books(user: Any) -> tuple[Decimal, Decimal]:
    return wallet_balance(user=user), wallet_debt(user=user)


def spend(user: Any, amount: str) -> None:
    wallet_debit(user=user, amount=D(amount), kind="adjustment", idempotency_key=f"spent:{uuid4().hex}", memo="spent")


@pytest.fixture
def referred(settings, customer):  # type: ignore[no-untyped-def]
    """The customer was referred by `referrer`; deposits of 100 or more earn a 10 % bonus."""
    settings.WALLET_AFFILIATE_PERCENT = "5"
    referrer = UserFactory(username="referrer", email="referrer@example.com")
    customer.referred_by = referrer
    customer.save(update_fields=["referred_by"])
    BonusTierFactory(min_amount=D("100"), percent=D("10"))
    return referrer


def paid(user: Any, amount: str = "200") -> Any:
    payment = PaymentFactory(user=user, gateway="stripe", amount=D(amount), external_ref=f"cs_{uuid4().hex[:8]}")
    return payment_settle(payment_id=payment.pk)


def test_a_partial_refund_takes_back_the_same_share_of_bonus_and_commission(customer, referred):
    payment = paid(customer)
    assert books(customer) == (D("220"), 0) and books(referred) == (D("10"), 0)
    payment_reverse(payment_id=payment.pk, amount=D("50"), kind="reversal", reason="refund", reference="re_1")
    # A quarter of the deposit went back: a quarter of the bonus (5) and of the commission (2.5).
    assert books(customer) == (D("165"), 0)
    assert books(referred) == (D("7.5"), 0)
    assert Entry.objects.get(kind="bonus_reversal").amount == D("-5")
    assert Entry.objects.get(kind="commission_reversal").user == referred
    payment_reverse(payment_id=payment.pk, amount=D("150"), kind="reversal", reason="refund", reference="re_2")
    assert books(customer) == (D("0"), 0) and books(referred) == (D("0"), 0)
    assert ledger_audit() == []


def test_a_replayed_chargeback_claws_back_once(customer, referred):
    payment = paid(customer)
    for _ in range(3):
        payment_reverse(payment_id=payment.pk, amount=D("200"), kind="chargeback", reason="dispute", reference="dp_1")
    assert Entry.objects.filter(kind="bonus_reversal").count() == 1
    assert Entry.objects.filter(kind="commission_reversal").count() == 1
    assert books(customer) == (0, 0) and books(referred) == (0, 0)
    assert ledger_audit() == []


def test_a_referrer_who_spent_the_commission_owes_it_like_the_customer(customer, referred):
    payment = paid(customer)
    spend(referred, "8")
    spend(customer, "200")
    payment_reverse(payment_id=payment.pk, amount=D("200"), kind="chargeback", reason="dispute", reference="dp_1")
    assert books(customer) == (0, D("200"))  # the 20 bonus left covered 20 of the 220 taken
    assert books(referred) == (0, D("8"))
    assert Wallet.objects.get(user=referred).debt == D("8")
    assert ledger_audit() == []


def test_a_won_dispute_gives_the_bonus_and_commission_back(customer, referred):
    payment = paid(customer)
    spend(referred, "10")
    payment_reverse(payment_id=payment.pk, amount=D("200"), kind="chargeback", reason="dispute", reference="dp_1")
    assert books(referred) == (0, D("10"))
    payment_reinstate(payment_id=payment.pk, amount=D("200"), reason="won", reference="dp_1")
    assert books(customer) == (D("220"), 0)
    assert books(referred) == (0, 0)  # the commission given back paid the referrer's debt first
    assert ledger_audit() == []


def test_the_audit_finds_a_bonus_not_taken_back(customer, referred):
    payment = paid(customer)
    import wallets.reversals as reversals

    # A reversal made without its clawback (as before this rule existed, or a bug).
    original = reversals._clawback
    reversals._clawback = lambda **kwargs: None  # type: ignore[assignment]
    try:
        payment_reverse(payment_id=payment.pk, amount=D("100"), kind="reversal", reason="refund", reference="re_1")
    finally:
        reversals._clawback = original
    assert any("bonus taken back" in line for line in ledger_audit())


# --- Forgiving a debt ------------------------------------------------------------------------------


@pytest.fixture
def owing(customer):  # type: ignore[no-untyped-def]
    payment = paid(customer, "30")
    spend(customer, "30")
    payment_reverse(payment_id=payment.pk, amount=D("30"), kind="chargeback", reason="dispute", reference="dp_1")
    assert books(customer) == (0, D("30"))
    return customer


def test_staff_forgive_a_debt_with_a_reason_and_the_customer_may_order_again(owing, staff, shop, queue):
    from orders.services import order_place

    service = shop.service(price="1.000000")
    spend_free = PaymentFactory(user=owing, gateway="stripe", amount=D("10"), external_ref="cs_more")
    with pytest.raises(DebtError):
        debt_forgive(user_id=owing.pk, reason="", actor=staff, idempotency_key="forgive:" + "1" * 32)
    entry = debt_forgive(user_id=owing.pk, reason="goodwill", actor=staff, idempotency_key="forgive:" + "1" * 32)
    assert (entry.kind, entry.amount, entry.owed, entry.actor) == ("debt_forgiven", 0, D("-30"), staff)
    assert "goodwill" in entry.memo
    assert books(owing) == (0, 0)
    # The same form posted twice forgives once.
    assert (
        debt_forgive(user_id=owing.pk, reason="goodwill", actor=staff, idempotency_key="forgive:" + "1" * 32) == entry
    )
    payment_settle(payment_id=spend_free.pk)
    assert books(owing) == (D("10"), 0)  # the next deposit pays no debt any more
    order = order_place(
        user=owing, service_id=service.pk, fields={"link": "https://instagram.com/p/x", "quantity": "100"}
    )
    assert order.charge == D("0.1")
    assert ledger_audit() == []


def test_only_staff_forgive_and_never_their_own_and_never_nothing(owing, customer, other_customer):
    with pytest.raises(DebtError):
        debt_forgive(user_id=owing.pk, reason="x", actor=other_customer, idempotency_key="forgive:" + "2" * 32)
    with pytest.raises(DebtError):
        debt_forgive(user_id=other_customer.pk, reason="x", actor=UserFactory(is_staff=True), idempotency_key="k3")
    assert books(owing) == (0, D("30"))


def test_the_admin_page_needs_the_forgive_permission(owing, settings):
    from django.contrib.auth.models import Group

    settings.STAFF_REQUIRE_MFA = False
    for role, allowed in (("Support", False), ("Finance", True)):
        member = UserFactory(username=f"m-{role}", is_staff=True)
        member.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(member)
        response = client.post(
            "/admin/wallets/wallet/forgive/", {"user": owing.username, "reason": "ok", "key": "forgive:" + "3" * 32}
        )
        assert response.status_code == (302 if allowed else 403), role
        assert books(owing) == ((0, 0) if allowed else (0, D("30")))
    entry = Entry.objects.get(kind="debt_forgiven")
    assert entry.actor.username == "m-Finance" and entry.memo == "Debt forgiven: ok"
