from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from kernel.protocol import ERR_NOT_ENOUGH_FUNDS
from tests.wallets.factories import fund
from wallets.models import Entry, LedgerIsAppendOnly, Wallet
from wallets.selectors import entry_list_for_user, wallet_balance
from wallets.services import (
    IdempotencyConflict,
    InsufficientFunds,
    WalletError,
    wallet_adjust,
    wallet_credit,
    wallet_debit,
)

pytestmark = pytest.mark.django_db
D = Decimal


def _state(user):  # type: ignore[no-untyped-def]
    return wallet_balance(user=user), list(Entry.objects.filter(user=user).values_list("id", flat=True))


def test_credit_creates_the_wallet_and_records_the_entry(customer):
    entry = wallet_credit(
        user=customer, amount=D("12.34567"), kind=Entry.Kind.DEPOSIT, idempotency_key="payment:1:deposit", memo="hi"
    )
    assert Wallet.objects.get(user=customer).balance == D("12.34567")
    assert entry.amount == D("12.34567")
    assert entry.balance_after == D("12.34567")
    assert entry.kind == "deposit"
    assert entry.memo == "hi"
    assert entry.created_at is not None


def test_debit_takes_money_and_records_a_negative_entry(customer):
    fund(customer, "10")
    entry = wallet_debit(
        user=customer, amount=D("2.50000"), kind=Entry.Kind.CHARGE, idempotency_key="order:7:charge", order_ref=7
    )
    assert entry.amount == D("-2.5")
    assert entry.balance_after == D("7.5")
    assert entry.order_ref == 7
    assert wallet_balance(user=customer) == D("7.50000")


def test_debit_of_the_whole_balance_leaves_zero(customer):
    fund(customer, "3")
    wallet_debit(user=customer, amount=D("3"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    assert wallet_balance(user=customer) == D("0")


def test_debit_short_of_funds_raises_and_changes_nothing(customer):
    fund(customer, "1")
    before = _state(customer)
    with pytest.raises(InsufficientFunds) as caught:
        wallet_debit(user=customer, amount=D("1.00001"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    assert str(caught.value) == ERR_NOT_ENOUGH_FUNDS == "Not enough funds on balance"
    assert isinstance(caught.value, WalletError)
    assert _state(customer) == before
    assert not Entry.objects.filter(idempotency_key="order:1:charge").exists()


def test_debit_without_a_wallet_is_short_of_funds_and_creates_nothing(customer):
    with pytest.raises(InsufficientFunds):
        wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    assert not Wallet.objects.filter(user=customer).exists()
    assert not Entry.objects.exists()


def test_same_key_twice_moves_money_once_and_returns_the_first_entry(customer):
    first = wallet_credit(user=customer, amount=D("5"), kind=Entry.Kind.REFUND, idempotency_key="order:1:refund")
    again = wallet_credit(user=customer, amount=D("5"), kind=Entry.Kind.REFUND, idempotency_key="order:1:refund")
    assert again.pk == first.pk
    assert wallet_balance(user=customer) == D("5")
    assert Entry.objects.count() == 1


def test_retried_debit_returns_the_entry_even_when_the_balance_is_now_short(customer):
    fund(customer, "4")
    first = wallet_debit(user=customer, amount=D("4"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    again = wallet_debit(user=customer, amount=D("4"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    assert again.pk == first.pk
    assert wallet_balance(user=customer) == D("0")


def test_same_key_with_another_amount_is_a_conflict_and_changes_nothing(customer):
    fund(customer, "10")
    wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    before = _state(customer)
    with pytest.raises(IdempotencyConflict):
        wallet_debit(user=customer, amount=D("2"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    assert _state(customer) == before


def test_same_key_for_another_user_is_a_conflict_and_changes_nothing(customer, other_customer):
    wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.REFUND, idempotency_key="order:1:refund")
    with pytest.raises(IdempotencyConflict):
        wallet_credit(user=other_customer, amount=D("1"), kind=Entry.Kind.REFUND, idempotency_key="order:1:refund")
    assert wallet_balance(user=other_customer) == D("0")
    assert wallet_balance(user=customer) == D("1")


def test_same_key_with_another_kind_is_a_conflict(customer):
    wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.REFUND, idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.BONUS, idempotency_key="k")


def test_debit_inside_an_outer_transaction_commits_with_it(customer):
    fund(customer, "10")
    with transaction.atomic():
        wallet_debit(user=customer, amount=D("3"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
        assert wallet_balance(user=customer) == D("7")
    assert wallet_balance(user=customer) == D("7")


def test_debit_inside_an_outer_transaction_rolls_back_with_it(customer):
    fund(customer, "10")
    before = _state(customer)
    with pytest.raises(RuntimeError), transaction.atomic():
        wallet_debit(user=customer, amount=D("3"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
        raise RuntimeError("order creation failed")
    assert _state(customer) == before


def test_short_debit_leaves_the_outer_transaction_usable(customer):
    fund(customer, "1")
    with transaction.atomic():
        with pytest.raises(InsufficientFunds):
            wallet_debit(user=customer, amount=D("5"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
        # The caller carries on in the same transaction (e.g. records the failure).
        wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:2:charge")
    assert wallet_balance(user=customer) == D("0")


def test_duplicate_key_inside_an_outer_transaction_leaves_it_usable(customer):
    fund(customer, "10")
    with transaction.atomic():
        first = wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
        again = wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
        assert again.pk == first.pk
        wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:2:charge")
    assert wallet_balance(user=customer) == D("8")


@pytest.mark.parametrize("amount", [D("0"), D("-1"), D("0.000001"), D("NaN"), D("Infinity"), D("1e13")])
def test_bad_amounts_are_refused_and_change_nothing(customer, amount):
    fund(customer, "10")
    before = _state(customer)
    with pytest.raises(WalletError):
        wallet_credit(user=customer, amount=amount, kind=Entry.Kind.DEPOSIT, idempotency_key="x")
    with pytest.raises(WalletError):
        wallet_debit(user=customer, amount=amount, kind=Entry.Kind.CHARGE, idempotency_key="y")
    assert _state(customer) == before


def test_float_amounts_are_a_programming_error(customer):
    with pytest.raises(TypeError):
        wallet_credit(user=customer, amount=1.5, kind=Entry.Kind.DEPOSIT, idempotency_key="x")  # type: ignore[arg-type]


def test_kinds_go_one_way(customer):
    fund(customer, "10")
    with pytest.raises(ValueError):
        wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="x")
    with pytest.raises(ValueError):
        wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.DEPOSIT, idempotency_key="y")
    with pytest.raises(ValueError):
        wallet_credit(user=customer, amount=D("1"), kind="gift", idempotency_key="z")
    assert wallet_balance(user=customer) == D("10")


def test_empty_idempotency_key_is_refused(customer):
    with pytest.raises(ValueError):
        wallet_credit(user=customer, amount=D("1"), kind=Entry.Kind.DEPOSIT, idempotency_key="")


def test_kind_values_are_the_agreed_ones():
    assert set(Entry.Kind.values) == {
        "deposit",
        "bonus_reversal",
        "commission_reversal",
        "debt_forgiven",
        "bonus",
        "charge",
        "refund",
        "adjustment",
        "commission",
        "reversal",
        "chargeback",
        "reinstatement",
        "debt_payment",
    }


def test_entries_cannot_be_changed_or_deleted(customer):
    entry = fund(customer, "10")
    entry.amount = D("1000")
    with pytest.raises(LedgerIsAppendOnly):
        entry.save()
    with pytest.raises(LedgerIsAppendOnly):
        entry.delete()
    with pytest.raises(LedgerIsAppendOnly):
        Entry.objects.filter(pk=entry.pk).update(amount=D("1000"))
    with pytest.raises(LedgerIsAppendOnly):
        Entry.objects.filter(pk=entry.pk).delete()
    assert Entry.objects.get(pk=entry.pk).amount == D("10")


def test_the_database_refuses_a_negative_balance(customer):
    fund(customer, "1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=customer).update(balance=D("-1"))
    assert wallet_balance(user=customer) == D("1")


def test_decimal_amounts_add_up_exactly_on_every_database(customer, other_customer):
    # On SQLite decimals are floats underneath, where 0.3 - 0.1 < 0.2 and 0.1 + 0.2 > 0.3.
    wallet_credit(user=customer, amount=D("0.3"), kind=Entry.Kind.DEPOSIT, idempotency_key="c0")
    wallet_debit(user=customer, amount=D("0.1"), kind=Entry.Kind.CHARGE, idempotency_key="d0")
    wallet_debit(user=customer, amount=D("0.2"), kind=Entry.Kind.CHARGE, idempotency_key="d1")
    assert wallet_balance(user=customer) == D("0")
    for i in range(3):
        wallet_credit(user=other_customer, amount=D("0.1"), kind=Entry.Kind.DEPOSIT, idempotency_key=f"c{i + 1}")
    wallet_debit(user=other_customer, amount=D("0.3"), kind=Entry.Kind.CHARGE, idempotency_key="d2")
    with pytest.raises(InsufficientFunds):
        wallet_debit(user=other_customer, amount=D("0.00001"), kind=Entry.Kind.CHARGE, idempotency_key="d3")
    assert Wallet.objects.filter(balance=0).count() == 2


def test_balance_after_follows_each_entry(customer):
    fund(customer, "10")
    wallet_debit(user=customer, amount=D("3"), kind=Entry.Kind.CHARGE, idempotency_key="order:1:charge")
    wallet_credit(user=customer, amount=D("1.5"), kind=Entry.Kind.REFUND, idempotency_key="order:1:refund")
    assert [e.balance_after for e in entry_list_for_user(user=customer)] == [D("8.5"), D("7"), D("10")]


def test_entry_list_holds_only_the_users_own_entries(customer, other_customer):
    fund(customer, "1")
    fund(other_customer, "2")
    assert {e.user_id for e in entry_list_for_user(user=customer)} == {customer.pk}


def test_wallet_balance_is_zero_without_a_wallet_and_for_anonymous(customer):
    from django.contrib.auth.models import AnonymousUser

    assert wallet_balance(user=customer) == D("0")
    assert wallet_balance(user=AnonymousUser()) == D("0")


# --- Staff adjustments -------------------------------------------------------------------


def test_adjust_adds_funds_with_actor_and_reason(customer, staff):
    entry = wallet_adjust(user=customer, amount=D("5"), reason="Goodwill for ticket 12", actor=staff)
    assert entry.kind == "adjustment"
    assert entry.actor == staff
    assert entry.memo == "Goodwill for ticket 12"
    assert wallet_balance(user=customer) == D("5")


def test_adjust_deducts_funds(customer, staff):
    fund(customer, "10")
    entry = wallet_adjust(user=customer, amount=D("-4"), reason="Chargeback", actor=staff)
    assert entry.amount == D("-4")
    assert wallet_balance(user=customer) == D("6")


def test_adjust_cannot_deduct_below_zero(customer, staff):
    fund(customer, "1")
    before = _state(customer)
    with pytest.raises(InsufficientFunds):
        wallet_adjust(user=customer, amount=D("-2"), reason="Chargeback", actor=staff)
    assert _state(customer) == before


def test_adjust_with_the_same_key_twice_adjusts_once(customer, staff):
    key = "adjust:" + "a" * 32
    wallet_adjust(user=customer, amount=D("5"), reason="x", actor=staff, idempotency_key=key)
    wallet_adjust(user=customer, amount=D("5"), reason="x", actor=staff, idempotency_key=key)
    assert wallet_balance(user=customer) == D("5")


@pytest.mark.parametrize("reason", ["", "   "])
def test_adjust_requires_a_reason(customer, staff, reason):
    with pytest.raises(WalletError):
        wallet_adjust(user=customer, amount=D("5"), reason=reason, actor=staff)
    assert wallet_balance(user=customer) == D("0")


def test_adjust_requires_a_staff_actor(customer, other_customer):
    with pytest.raises(WalletError):
        wallet_adjust(user=customer, amount=D("5"), reason="x", actor=other_customer)
    assert wallet_balance(user=customer) == D("0")


def test_staff_cannot_adjust_their_own_balance(staff):
    with pytest.raises(WalletError):
        wallet_adjust(user=staff, amount=D("5"), reason="x", actor=staff)
    assert wallet_balance(user=staff) == D("0")


def test_adjust_refuses_zero(customer, staff):
    with pytest.raises(WalletError):
        wallet_adjust(user=customer, amount=D("0"), reason="x", actor=staff)
