"""Money that comes back: a gateway's refund or reversal, a chargeback, a won dispute.

Each is its own ledger entry under a key per gateway event (`payment:<id>:<kind>:<ref>`),
so a replayed notification moves money once. What the balance cannot cover is not lost
and never makes the balance negative: the entry takes what the balance holds and records
the rest in its `owed` column, which the wallet's `debt` sums. So Σ amount = balance and
Σ owed = debt for every user (`ledger_audit`), and the customer's next deposit pays the
debt first (`debt_collect`, called by the settle path).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from kernel.money import ZERO, money, money_down

from .gateways.base import Notification, Report
from .models import Entry, Payment, Wallet
from .states import PaymentStatus

logger = logging.getLogger(__name__)

TAKE_BACK_KINDS = frozenset({Entry.Kind.REVERSAL, Entry.Kind.CHARGEBACK})
# A payment from which money can be taken back: it was credited.
CREDITED_STATES = frozenset({PaymentStatus.PAID, PaymentStatus.PARTLY_REFUNDED, PaymentStatus.REFUNDED})


MONEY_BACK = frozenset({PaymentStatus.REFUNDED, PaymentStatus.PARTLY_REFUNDED})


class ReversalError(Exception):
    """Money cannot come back from this payment; the message is for staff."""


def _key(*, payment_id: int, kind: str, reference: str) -> str:
    key = f"payment:{payment_id}:{kind}:{reference}"
    if len(key) <= 128:
        return key
    # Gateways' ids are short; a long one keeps its identity through a digest.
    return f"payment:{payment_id}:{kind}:{hashlib.sha256(reference.encode()).hexdigest()}"


def _move(
    *,
    user_id: int,
    kind: str,
    idempotency_key: str,
    memo: str,
    payment: Payment | None,
    split: Callable[[Decimal, Decimal], tuple[Decimal, Decimal]],
) -> Entry | None:
    """Change balance and debt by `split(balance, debt)` under the wallet's row lock, with its entry.

    Runs in the caller's transaction, after the payment's row lock (the settle path's
    order: payment, then wallet). None when nothing moves.
    """
    existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    Wallet.objects.bulk_create([Wallet(user_id=user_id)], ignore_conflicts=True)
    wallet = Wallet.objects.select_for_update().get(user_id=user_id)
    balance, debt = money(wallet.balance), money(wallet.debt)
    delta, owed = split(balance, debt)
    if delta == 0 and owed == 0:
        return None
    new_balance, new_debt = money(balance + delta), money(debt + owed)
    Wallet.objects.filter(user_id=user_id).update(balance=new_balance, debt=new_debt)
    return Entry.objects.create(
        user_id=user_id,
        amount=delta,
        owed=owed,
        kind=kind,
        idempotency_key=idempotency_key,
        memo=memo[:255],
        payment=payment,
        balance_after=new_balance,
    )


def _taken_back(payment: Payment, *, kind: str | None = None) -> Decimal:
    """What the ledger took back from the payment so far (of `kind`, or of every kind)."""
    kinds = [kind] if kind else list(TAKE_BACK_KINDS)
    rows = Entry.objects.filter(payment=payment, kind__in=kinds).aggregate(a=Sum("amount"), o=Sum("owed"))
    return money((rows["o"] or ZERO) - (rows["a"] or ZERO))


def payment_reverse(
    *, payment_id: int, amount: Decimal, kind: str, reason: str, reference: str, cumulative: bool = False
) -> Payment:
    """The gateway took `amount` back from a credited payment (a refund, a reversal, a chargeback).

    Partial amounts are fine; the sum never exceeds what the payment credited. With
    `cumulative`, `amount` is the gateway's total of this kind so far, and only what the
    ledger has not yet taken moves (an older total arriving late moves nothing). The
    balance gives what it holds and the rest becomes the customer's debt.
    """
    if kind not in TAKE_BACK_KINDS:
        raise ValueError(f"{kind!r} does not take money back")
    if not reference:
        raise ValueError("a gateway reference is required: it keys the ledger entry")
    amount = money(amount)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        key = _key(payment_id=payment.pk, kind=kind, reference=reference)
        if Entry.objects.filter(idempotency_key=key).exists():
            return payment
        if payment.status not in CREDITED_STATES:
            raise ReversalError(f"Payment #{payment.pk} is {payment.status}: nothing was credited to take back.")
        if cumulative:
            amount -= _taken_back(payment, kind=kind)
        credited = payment.credited if payment.credited is not None else payment.amount
        take = min(amount, credited - payment.reversed_amount)
        if take <= 0:
            return payment
        with translation.override(None):  # the ledger's memos are written in one language
            label = str(Entry.Kind(kind).label)
        _move(
            user_id=payment.user_id,
            kind=kind,
            idempotency_key=key,
            memo=f"{label} of deposit #{payment.pk}: {reason}",
            payment=payment,
            split=lambda balance, _debt: (-min(balance, take), take - min(balance, take)),
        )
        payment.reversed_amount = money(payment.reversed_amount + take)
        payment.status = (
            PaymentStatus.REFUNDED if payment.reversed_amount >= credited else PaymentStatus.PARTLY_REFUNDED
        )
        payment.note = reason[:255]
        payment.save(update_fields=["reversed_amount", "status", "note", "updated_at"])
        _clawback(payment=payment, reference=reference)
    logger.warning("payment %s: %s %s taken back (%s)", payment.pk, kind, take, reference)
    return payment


def payment_reinstate(*, payment_id: int, amount: Decimal, reason: str, reference: str) -> Payment:
    """A chargeback was reversed (the dispute was won): the gateway gave `amount` back.

    At most what the chargeback `reference` took; it pays the customer's debt first.
    """
    if not reference:
        raise ValueError("a gateway reference is required: it keys the ledger entry")
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        key = _key(payment_id=payment.pk, kind=Entry.Kind.REINSTATEMENT, reference=reference)
        if Entry.objects.filter(idempotency_key=key).exists():
            return payment
        charged_back = Entry.objects.filter(
            idempotency_key=_key(payment_id=payment.pk, kind=Entry.Kind.CHARGEBACK, reference=reference)
        ).first()
        if charged_back is None:
            return payment  # the dispute never took money here: nothing comes back
        give = min(money(amount), money(charged_back.owed - charged_back.amount))
        if give <= 0:
            return payment
        _move(
            user_id=payment.user_id,
            kind=Entry.Kind.REINSTATEMENT,
            idempotency_key=key,
            memo=f"Reinstatement on deposit #{payment.pk}: {reason}",
            payment=payment,
            split=lambda _balance, debt: (give - min(debt, give), -min(debt, give)),
        )
        payment.reversed_amount = money(max(payment.reversed_amount - give, ZERO))
        payment.status = PaymentStatus.PARTLY_REFUNDED if payment.reversed_amount > 0 else PaymentStatus.PAID
        payment.note = reason[:255]
        payment.save(update_fields=["reversed_amount", "status", "note", "updated_at"])
        _clawback(payment=payment, reference=f"reinstated:{reference}")
    return payment


def debt_collect(*, payment: Payment) -> Entry | None:
    """After a deposit is credited: pay what the customer owes from the balance, first.

    In the settle path's transaction, keyed by the deposit so a replay collects once.
    """
    return _move(
        user_id=payment.user_id,
        kind=Entry.Kind.DEBT_PAYMENT,
        idempotency_key=f"payment:{payment.pk}:debt",
        memo=f"Owed amount paid from deposit #{payment.pk}",
        payment=payment,
        split=lambda balance, debt: (-min(balance, debt), -min(balance, debt)),
    )


def payment_money_back(*, payment: Payment, notification: Notification, report: Report) -> Payment:
    """A refund, reversal or chargeback (or a won dispute) that a gateway reported."""
    amount = report.credit if report.credit is not None else report.amount
    reference = report.reference or notification.event_id
    note = report.note or f"{payment.gateway}: {report.reversal or 'refund'}"
    problem = ""
    if amount is None or amount <= 0 or not reference:
        problem = f"{note}: no amount, check."
    elif report.reversal == Entry.Kind.REINSTATEMENT:
        return payment_reinstate(payment_id=payment.pk, amount=amount, reason=note, reference=reference)
    else:
        kind = Entry.Kind.CHARGEBACK if report.reversal == Entry.Kind.CHARGEBACK else Entry.Kind.REVERSAL
        try:
            return payment_reverse(
                payment_id=payment.pk,
                amount=amount,
                kind=kind,
                reason=note,
                reference=reference,
                cumulative=report.cumulative,
            )
        except ReversalError as exc:
            problem = str(exc)
    logger.error("%s notification %s: %s", payment.gateway, notification.event_id, problem)
    Payment.objects.filter(pk=payment.pk).update(
        raw_notification=notification.raw, note=problem[:255], updated_at=timezone.now()
    )
    return payment


# --- The deposit's bonus and the referrer's commission follow it back ----------------------------

CLAWBACK_KINDS = {Entry.Kind.BONUS: Entry.Kind.BONUS_REVERSAL, Entry.Kind.COMMISSION: Entry.Kind.COMMISSION_REVERSAL}


def clawback_due(*, granted: Decimal, reversed_amount: Decimal, credited: Decimal) -> Decimal:
    """What of a bonus or commission `granted` on a deposit follows `reversed_amount` of its
    `credited` back: the same share, rounded down (a full refund takes it all)."""
    if credited <= 0:
        return ZERO
    return money_down(granted * min(reversed_amount, credited) / credited)


def _clawback(*, payment: Payment, reference: str) -> None:
    """After money came back from (or went back to) `payment`: move its bonus and its
    referrer's commission to the share the gateway left, each on its own wallet with what the
    balance cannot cover as debt (a referrer who spent the commission owes it, like the
    customer). Runs in the caller's transaction after the payment's row lock."""
    credited = payment.credited if payment.credited is not None else payment.amount
    for granted_entry in Entry.objects.filter(payment=payment, kind__in=list(CLAWBACK_KINDS)).order_by("user_id"):
        kind = CLAWBACK_KINDS[Entry.Kind(granted_entry.kind)]
        target = clawback_due(granted=granted_entry.amount, reversed_amount=payment.reversed_amount, credited=credited)
        rows = Entry.objects.filter(payment=payment, kind=kind).aggregate(a=Sum("amount"), o=Sum("owed"))
        taken = money((rows["o"] or ZERO) - (rows["a"] or ZERO))
        delta = target - taken
        if delta == 0:
            continue
        label = "Bonus" if kind == Entry.Kind.BONUS_REVERSAL else "Referral commission"
        if delta > 0:
            memo = f"{label} of deposit #{payment.pk} taken back with it"
        else:
            memo = f"{label} of deposit #{payment.pk} given back (dispute won)"
        _move(
            user_id=granted_entry.user_id,
            kind=kind,
            idempotency_key=_key(payment_id=payment.pk, kind=kind, reference=reference),
            memo=memo,
            payment=payment,
            split=partial(_follow, delta=delta),
        )


def _follow(balance: Decimal, debt: Decimal, *, delta: Decimal) -> tuple[Decimal, Decimal]:
    """(balance change, debt change) of taking `delta` (> 0) or giving `-delta` back (< 0):
    a take leaves what the balance cannot cover as debt, a give pays the debt first."""
    if delta > 0:
        return -min(balance, delta), delta - min(balance, delta)
    give = -delta
    return give - min(debt, give), -min(debt, give)


# --- Forgiving a debt ---------------------------------------------------------------------------


class DebtError(Exception):
    """The debt cannot be forgiven; the message is for the staff member who asked."""


def debt_forgive(*, user_id: int, reason: str, actor: Any, idempotency_key: str) -> Entry:
    """Staff write off everything the customer owes: a `debt_forgiven` entry (no balance moves,
    the debt goes to zero) recording who and why. The customer may order again. The same key
    (the admin form's) forgives once."""
    reason = (reason or "").strip()
    if not reason:
        raise DebtError(_("A reason is required."))
    if actor is None or not actor.is_staff:
        raise DebtError(_("Only staff can forgive a debt."))
    if actor.pk == user_id:
        raise DebtError(_("Staff cannot forgive their own debt."))
    with transaction.atomic():
        existing = Entry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        wallet = Wallet.objects.select_for_update().filter(user_id=user_id).first()
        if wallet is None or wallet.debt <= 0:
            raise DebtError(_("This customer owes nothing."))
        debt = money(wallet.debt)
        Wallet.objects.filter(user_id=user_id).update(debt=ZERO)
        entry = Entry.objects.create(
            user_id=user_id,
            amount=ZERO,
            owed=-debt,
            kind=Entry.Kind.DEBT_FORGIVEN,
            idempotency_key=idempotency_key,
            memo=f"Debt forgiven: {reason}"[:255],
            actor=actor,
            balance_after=money(wallet.balance),
        )
    logger.warning("user %s: debt of %s forgiven by %s: %s", user_id, debt, actor, reason)
    return entry
