"""The ledger: every movement of money goes through `wallet_credit` / `wallet_debit` (and
`wallet_charge_order`, the charge of a new order in its placing transaction).

Each one changes the cached balance with one conditional UPDATE and inserts the ledger
entry, in a single transaction (a savepoint when the caller already has one; not for an
order's charge, whose caller's transaction undoes everything). The entry's unique
idempotency key makes a retry, a double click or a replayed notification a no-op.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from kernel import db as kernel_db
from kernel.db import hot_cursor, insert_parts
from kernel.money import money, to_decimal
from kernel.protocol import ERR_NOT_ENOUGH_FUNDS

from .models import Entry, Payment, Wallet
from .selectors import wallet_debt

if TYPE_CHECKING:
    from accounts.models import User

CREDIT_KINDS = frozenset(
    {Entry.Kind.DEPOSIT, Entry.Kind.BONUS, Entry.Kind.REFUND, Entry.Kind.ADJUSTMENT, Entry.Kind.COMMISSION}
)
DEBIT_KINDS = frozenset({Entry.Kind.CHARGE, Entry.Kind.ADJUSTMENT})
# 18 digits with 5 decimals leave 13 before the point.
MAX_AMOUNT = Decimal("1e13")


class WalletError(Exception):
    """A wallet rule said no. The message is meant for the person who asked."""


class InsufficientFunds(WalletError):
    def __init__(self, message: str = ERR_NOT_ENOUGH_FUNDS) -> None:
        super().__init__(message)


class Owing(WalletError):
    """The customer owes money from a payment taken back (Wallet.debt): nothing is charged
    until a deposit pays it or staff forgive it."""

    def __init__(self, debt: Decimal) -> None:
        self.debt = debt
        super().__init__(f"owes {debt}")


class IdempotencyConflict(WalletError):
    """The key was already used for a different movement: a bug in the caller, never retried."""


# --- The ledger --------------------------------------------------------------------------


def wallet_credit(
    *,
    user: User,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str = "",
    actor: User | None = None,
    payment: Payment | None = None,
    order_ref: int | None = None,
) -> Entry:
    """Add `amount` (> 0) to the user's balance and record it; once per idempotency key."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"{kind!r} is not a credit kind")
    return _post(
        user=user,
        delta=checked_amount(amount),
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo,
        actor=actor,
        payment=payment,
        order_ref=order_ref,
    )


def wallet_debit(
    *,
    user: User,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str = "",
    actor: User | None = None,
    order_ref: int | None = None,
) -> Entry:
    """Take `amount` (> 0) from the user's balance and record it; once per idempotency key.

    Raises InsufficientFunds, changing nothing, when the balance is short.
    """
    if kind not in DEBIT_KINDS:
        raise ValueError(f"{kind!r} is not a debit kind")
    return _post(
        user=user,
        delta=-checked_amount(amount),
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo,
        actor=actor,
        payment=None,
        order_ref=order_ref,
    )


def wallet_charge_order(*, user: User, amount: Decimal, order_ref: int) -> Entry:
    """Charge a new order (`amount` > 0) inside the caller's transaction (order placing),
    which undoes everything when this raises: no savepoint of its own, and one statement
    for the balance, which is not touched while the customer owes (Wallet.debt).

    Raises Owing or InsufficientFunds. The order's id keys the entry (`order:<id>:charge`),
    so it is new: a retry of the placing finds the order by its idempotency key instead.
    """
    amount = checked_amount(amount)
    if not connection.in_atomic_block:
        raise RuntimeError("an order is charged in the transaction that creates it")
    entry = Entry(
        user_id=user.pk,
        amount=-amount,
        kind=Entry.Kind.CHARGE,
        idempotency_key=f"order:{order_ref}:charge",
        memo=f"Order #{order_ref}",
        order_ref=order_ref,
    )
    if kernel_db.written_out():
        charged = _charge_in_one_statement(entry=entry, amount=amount)
    else:
        balance = _update_balance(user_id=user.pk, delta=-amount, unless_owing=True)
        if balance is not None:
            entry.balance_after = money(to_decimal(balance))
            entry.save(force_insert=True)
        charged = balance is not None
    if not charged:
        debt = wallet_debt(user=user)
        if debt > 0:
            raise Owing(debt)
        raise InsufficientFunds()  # short, or no wallet yet (an empty one)
    return entry


def _charge_in_one_statement(*, entry: Entry, amount: Decimal) -> bool:
    """The conditional debit of _update_balance (unless owing) and the entry's INSERT with
    the balance it left, as one PostgreSQL statement (a data-modifying WITH), prepared once
    per connection (kernel.db.hot_cursor): both happen or neither. False, changing nothing,
    when the balance is short, the customer owes, or there is no wallet."""
    debit, debit_params = _balance_update_sql(user_id=entry.user_id, delta=-amount, unless_owing=True)
    columns, values, params = insert_parts(entry, skip=("balance_after",), cast=True)
    with hot_cursor() as cursor:
        cursor.execute(
            # Column names come from the models, values are parameters.
            f"WITH w AS ({debit}) INSERT INTO wallets_entry ({columns}, balance_after) "  # noqa: S608
            f"SELECT {values}, w.balance FROM w RETURNING id, balance_after",
            [*debit_params, *params],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    entry.pk, entry.balance_after = row[0], money(to_decimal(row[1]))
    entry._state.adding = False
    return True


def wallet_adjust(
    *, user: User, amount: Decimal, reason: str, actor: User, idempotency_key: str | None = None
) -> Entry:
    """A staff member adds (amount > 0) or deducts (amount < 0) funds by hand, with a reason.

    The admin form passes a key generated when the form was shown, so a double submit
    adjusts once.
    """
    reason = (reason or "").strip()
    if not reason:
        raise WalletError(_("A reason is required."))
    if actor is None or not actor.is_staff:
        raise WalletError(_("Only staff can adjust balances."))
    if actor.pk == user.pk:
        raise WalletError(_("Staff cannot adjust their own balance."))
    if not isinstance(amount, Decimal) or amount == 0:
        raise WalletError(_("The amount must not be zero."))
    key = idempotency_key or f"adjust:{uuid4().hex}"
    if amount > 0:
        return wallet_credit(
            user=user, amount=amount, kind=Entry.Kind.ADJUSTMENT, idempotency_key=key, memo=reason, actor=actor
        )
    return wallet_debit(
        user=user, amount=-amount, kind=Entry.Kind.ADJUSTMENT, idempotency_key=key, memo=reason, actor=actor
    )


def checked_amount(amount: Decimal) -> Decimal:
    if not isinstance(amount, Decimal):
        raise TypeError("money amounts are Decimal")
    if not amount.is_finite() or amount <= 0:
        raise WalletError(_("The amount must be positive."))
    if money(amount) != amount:
        raise WalletError(_("Amounts have at most 5 decimal places."))
    if amount >= MAX_AMOUNT:
        raise WalletError(_("The amount is too large."))
    return amount


def _post(
    *,
    user: User,
    delta: Decimal,
    kind: str,
    idempotency_key: str,
    memo: str,
    actor: User | None,
    payment: Payment | None,
    order_ref: int | None,
) -> Entry:
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValueError("an idempotency key of 1 to 128 characters is required")
    try:
        # A savepoint when the caller has a transaction (order placing does): a failure
        # below undoes the balance change and leaves the caller's transaction usable.
        with transaction.atomic():
            balance_after = _move_balance(user_id=user.pk, delta=delta)
            # The entry goes in after the balance row is locked by the UPDATE, so a user's
            # entries get ids in the order their balance changed (the audit relies on it).
            return Entry.objects.create(
                user_id=user.pk,
                amount=delta,
                kind=kind,
                idempotency_key=idempotency_key,
                memo=memo[:255],
                actor=actor,
                payment=payment,
                order_ref=order_ref,
                balance_after=balance_after,
            )
    except IntegrityError:
        # Most likely the key exists: a concurrent or earlier call moved the money. The
        # unique index decided, not a read before the write.
        existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
    except InsufficientFunds:
        # A retry after the money already moved can find the balance short: answer it
        # with the entry it asked for rather than an error.
        existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
    same = (
        existing.user_id == user.pk
        and existing.amount == delta
        and existing.kind == kind
        and existing.order_ref == order_ref
        and existing.payment_id == (payment.pk if payment else None)
    )
    if not same:
        raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was already used for a different entry.")
    return existing


def _move_balance(*, user_id: int, delta: Decimal) -> Decimal:
    """Apply delta to the balance, or raise InsufficientFunds; returns the new balance.

    Runs inside the caller's transaction. A debit is one conditional UPDATE ... WHERE
    balance >= amount, never a read followed by a write: two concurrent debits cannot both
    spend the same money, and the row stays locked until the transaction ends.
    """
    balance = _update_balance(user_id=user_id, delta=delta)
    if balance is None and delta > 0:
        # First credit: create the wallet. ON CONFLICT DO NOTHING makes a concurrent first
        # credit wait for the other insert instead of failing.
        Wallet.objects.bulk_create([Wallet(user_id=user_id)], ignore_conflicts=True)
        balance = _update_balance(user_id=user_id, delta=delta)
    if balance is None:
        raise InsufficientFunds()  # short, or no wallet yet (an empty one)
    return money(to_decimal(balance))


def _update_balance(*, user_id: int, delta: Decimal, unless_owing: bool = False) -> Any:
    """The compare-and-set itself; the new balance, or None when no row matched (or, with
    `unless_owing`, when the customer owes).

    Written out because the ORM's update() cannot say RETURNING: reading the new balance
    in the same statement saves a round trip while the row lock is held, which is what
    bounds debits per second on one busy wallet.
    """
    sql, params = _balance_update_sql(user_id=user_id, delta=delta, unless_owing=unless_owing)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _balance_update_sql(*, user_id: int, delta: Decimal, unless_owing: bool) -> tuple[str, list[Any]]:
    """`UPDATE … RETURNING balance` adding `delta` to the user's balance, only if a debit
    leaves it >= 0 (and, with `unless_owing`, only while the customer owes nothing). ROUND
    keeps SQLite's float decimals from drifting (there 0.3 - 0.1 - 0.2 is -2.8e-17 and would
    trip the >= 0 constraint); on PostgreSQL's exact numeric it changes nothing."""
    qn = connection.ops.quote_name
    table, balance, user = qn(Wallet._meta.db_table), qn("balance"), qn("user_id")
    sql = f"UPDATE {table} SET {balance} = ROUND({balance} + %s, 5) WHERE {user} = %s"  # noqa: S608  (identifiers only)
    params: list[Any] = [delta, user_id]
    if delta < 0:
        sql += f" AND {balance} >= %s"
        params.append(-delta)
    if unless_owing:
        sql += f" AND {qn('debt')} = 0"
    return f"{sql} RETURNING {balance}", params
