"""The ledger's side of the audit: the money invariants of DESIGN.md that the ledger alone can
check, and the ledger summed per order for the apps whose orders it charges.

Every check is a handful of set-based queries, never a query per user or per order; the
per-order sums come sorted by order id, so the orders app can merge them with its orders
and memory stays flat over millions of them. `kernel.audit` runs the checks of every app in
one snapshot; wallets registers its own (apps.py), orders adds its own (orders/audit.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Max, Min, OuterRef, Q, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce, Lag, Round

from kernel.audit import DEFAULT_MAX_VIOLATIONS, AuditReport, Check, audit_run
from kernel.money import MONEY_PLACES, ZERO

from .models import Entry, Payment, Wallet
from .reversals import CLAWBACK_KINDS, clawback_due

CHUNK = 5_000
POSITIVE_KINDS = (Entry.Kind.DEPOSIT, Entry.Kind.BONUS, Entry.Kind.REFUND, Entry.Kind.COMMISSION)
_MONEY_FIELD: DecimalField = DecimalField(max_digits=18, decimal_places=5)


def ledger_audit(*, checks: tuple[Check, ...] | None = None, max_violations: int = DEFAULT_MAX_VIOLATIONS) -> list[str]:
    """Every violated invariant, one line each (an empty list when the books balance)."""
    return ledger_audit_run(checks=checks, max_violations=max_violations).lines()


def ledger_audit_run(
    *, checks: tuple[Check, ...] | None = None, max_violations: int = DEFAULT_MAX_VIOLATIONS
) -> AuditReport:
    """The ledger's checks and those every other app registered (or only `checks`), in one snapshot."""
    return audit_run(checks=checks, max_violations=max_violations)


def _rounded(expression: Any) -> Round:
    # SQLite keeps decimals as floats: compare at 5 places so float noise is not a finding
    # (a real difference is at least 0.00001). On PostgreSQL numeric this changes nothing.
    return Round(expression, 5, output_field=_MONEY_FIELD)


def check_wallets(report: AuditReport) -> None:
    totals = Wallet.objects.aggregate(n=Count("user_id"), total=Sum("balance"))
    report.counted("wallets", totals["n"])
    report.note(f"total balance {(totals['total'] or ZERO).quantize(MONEY_PLACES)}")

    for user_id, balance in Wallet.objects.filter(balance__lt=0).values_list("user_id", "balance"):
        report.add(f"user {user_id}: negative balance {balance}")

    ledger_sum = (
        Entry.objects.filter(user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    mismatched = (
        Wallet.objects.annotate(ledger=Coalesce(Subquery(ledger_sum), Value(ZERO), output_field=_MONEY_FIELD))
        .annotate(rounded_balance=_rounded(F("balance")), rounded_ledger=_rounded(F("ledger")))
        .exclude(rounded_balance=F("rounded_ledger"))
        .order_by("user_id")
        .values_list("user_id", "balance", "ledger")
    )
    for user_id, balance, ledger in mismatched.iterator(chunk_size=CHUNK):
        report.add(f"user {user_id}: balance {money(balance)} but the ledger sums to {money(ledger)}")

    orphans = (
        Entry.objects.exclude(user_id__in=Wallet.objects.values("user_id"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum("amount"))
        .order_by("user_id")
    )
    for row in orphans.iterator(chunk_size=CHUNK):
        report.add(f"user {row['user_id']}: ledger entries summing to {money(row['total'])} but no wallet")


def check_entries(report: AuditReport) -> None:
    report.counted("entries", Entry.objects.count())
    wrong_sign = Entry.objects.filter(
        Q(kind__in=POSITIVE_KINDS, amount__lt=0) | Q(kind=Entry.Kind.CHARGE, amount__gt=0)
    ).order_by("id")
    for entry_id, kind, amount in wrong_sign.values_list("id", "kind", "amount").iterator(chunk_size=CHUNK):
        report.add(f"entry {entry_id}: a {kind} of {amount} has the wrong sign")

    # Each entry's balance_after is the previous one's plus its amount (per user, by id).
    previous = Window(Lag("balance_after"), partition_by=[F("user_id")], order_by=F("id").asc())
    broken = (
        Entry.objects.annotate(previous=Coalesce(previous, Value(ZERO), output_field=_MONEY_FIELD))
        .annotate(expected=_rounded(F("previous") + F("amount")), rounded_after=_rounded(F("balance_after")))
        .filter(~Q(rounded_after=F("expected")))
        .order_by("id")
        .values_list("id", "user_id", "balance_after", "expected")
    )
    for entry_id, user_id, balance_after, expected in broken.iterator(chunk_size=CHUNK):
        report.add(
            f"entry {entry_id} (user {user_id}): balance_after {money(balance_after)}, expected {money(expected)}"
        )


@dataclass(frozen=True)
class OrderLedger:
    order_ref: int
    charges: int
    charged: Decimal
    refunded: Decimal
    min_user: int
    max_user: int


def order_ledgers() -> Iterator[OrderLedger]:
    """The charges and refunds of each order id in the ledger, by order id."""
    rows = (
        Entry.objects.filter(order_ref__isnull=False)
        .order_by()
        .values("order_ref")
        .annotate(
            charges=Count("id", filter=Q(kind=Entry.Kind.CHARGE)),
            charged=Sum("amount", filter=Q(kind=Entry.Kind.CHARGE)),
            refunded=Sum("amount", filter=Q(kind=Entry.Kind.REFUND)),
            min_user=Min("user_id"),
            max_user=Max("user_id"),
        )
        .order_by("order_ref")
    )
    for row in rows.iterator(chunk_size=CHUNK):
        yield OrderLedger(
            order_ref=row["order_ref"],
            charges=row["charges"],
            charged=money(row["charged"]),
            refunded=money(row["refunded"]),
            min_user=row["min_user"],
            max_user=row["max_user"],
        )


def money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(MONEY_PLACES)


def entries_without_order() -> Iterator[tuple[int, str]]:
    """(id, kind) of the charges and refunds that name no order."""
    loose = Entry.objects.filter(kind__in=(Entry.Kind.CHARGE, Entry.Kind.REFUND), order_ref__isnull=True)
    yield from loose.order_by("id").values_list("id", "kind").iterator(chunk_size=CHUNK)


MONEY_BACK_KINDS = (Entry.Kind.REVERSAL, Entry.Kind.CHARGEBACK, Entry.Kind.REINSTATEMENT)
CLAWBACK_ENTRY_KINDS = (Entry.Kind.BONUS_REVERSAL, Entry.Kind.COMMISSION_REVERSAL)
# The kinds that may move debt.
DEBT_KINDS = (*MONEY_BACK_KINDS, *CLAWBACK_ENTRY_KINDS, Entry.Kind.DEBT_PAYMENT, Entry.Kind.DEBT_FORGIVEN)


def check_debts(report: AuditReport) -> None:
    """Debt is explicit: each wallet's debt is the sum of its entries' `owed`, and every entry
    moves balance and debt the way its kind says."""
    totals = Wallet.objects.filter(debt__gt=0).aggregate(n=Count("user_id"), total=Sum("debt"))
    if totals["n"]:
        report.note(f"{totals['n']} customer(s) owing {money(totals['total'])}")
    for user_id, debt in Wallet.objects.filter(debt__lt=0).values_list("user_id", "debt"):
        report.add(f"user {user_id}: negative debt {debt}")
    owed_sum = (
        Entry.objects.filter(user_id=OuterRef("user_id"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum("owed"))
        .values("total")
    )
    mismatched = (
        Wallet.objects.annotate(owed=Coalesce(Subquery(owed_sum), Value(ZERO), output_field=_MONEY_FIELD))
        .annotate(rounded_debt=_rounded(F("debt")), rounded_owed=_rounded(F("owed")))
        .exclude(rounded_debt=F("rounded_owed"))
        .order_by("user_id")
        .values_list("user_id", "debt", "owed")
    )
    for user_id, debt, owed in mismatched.iterator(chunk_size=CHUNK):
        report.add(f"user {user_id}: debt {money(debt)} but the entries owe {money(owed)}")
    wrong = Entry.objects.filter(
        Q(kind__in=(Entry.Kind.REVERSAL, Entry.Kind.CHARGEBACK)) & (Q(amount__gt=0) | Q(owed__lt=0))
        | Q(kind=Entry.Kind.REINSTATEMENT) & (Q(amount__lt=0) | Q(owed__gt=0))
        | Q(kind=Entry.Kind.DEBT_PAYMENT) & (Q(amount__gte=0) | ~Q(owed=F("amount")))
        # A bonus or commission follows its deposit back (takes) or forward (gives), never both.
        | Q(kind__in=CLAWBACK_ENTRY_KINDS) & ~(Q(amount__lte=0, owed__gte=0) | Q(amount__gte=0, owed__lte=0))
        | Q(kind=Entry.Kind.DEBT_FORGIVEN) & (~Q(amount=0) | Q(owed__gte=0) | Q(actor__isnull=True))
        | ~Q(kind__in=DEBT_KINDS) & ~Q(owed=0)
        | Q(kind__in=(*MONEY_BACK_KINDS, *CLAWBACK_ENTRY_KINDS, Entry.Kind.DEBT_PAYMENT), payment__isnull=True)
    ).order_by("id")
    for entry_id, kind, amount, owed in wrong.values_list("id", "kind", "amount", "owed").iterator(chunk_size=CHUNK):
        report.add(f"entry {entry_id}: a {kind} moving balance {amount} and debt {owed} is not possible")


def check_payment_reversals(report: AuditReport) -> None:
    """What gateways took back from a payment (net of reinstatements) is what the payment says,
    and never more than it credited."""
    taken = (
        Entry.objects.filter(payment_id=OuterRef("pk"), kind__in=MONEY_BACK_KINDS)
        .order_by()
        .values("payment_id")
        .annotate(total=Sum(F("owed") - F("amount")))
        .values("total")
    )
    rows = (
        Payment.objects.annotate(taken=Coalesce(Subquery(taken), Value(ZERO), output_field=_MONEY_FIELD))
        .annotate(rounded_taken=_rounded(F("taken")), rounded_reversed=_rounded(F("reversed_amount")))
        .filter(
            ~Q(rounded_taken=F("rounded_reversed"))
            | Q(rounded_taken__lt=0)
            | Q(rounded_taken__gt=Coalesce(F("credited"), F("amount")))
        )
        .order_by("pk")
        .values_list("pk", "taken", "reversed_amount", "credited")
    )
    for payment_id, took, reversed_amount, credited in rows.iterator(chunk_size=CHUNK):
        report.add(
            f"payment {payment_id}: the ledger took back {money(took)}, the payment says {money(reversed_amount)}"
            f" of {money(credited)} credited"
        )


def check_clawbacks(report: AuditReport) -> None:
    """A deposit's bonus and its referrer's commission were taken back in the share the
    gateway took of the deposit (wallets/reversals.py `clawback_due`), no more, no less."""
    reversed_payments = Payment.objects.filter(reversed_amount__gt=0).values_list(
        "pk", "reversed_amount", "credited", "amount"
    )
    for payment_id, reversed_amount, credited, amount in reversed_payments.iterator(chunk_size=CHUNK):
        sums: dict[str, Decimal] = {}
        for kind, entry_amount, owed in Entry.objects.filter(
            payment_id=payment_id, kind__in=(Entry.Kind.BONUS, Entry.Kind.COMMISSION, *CLAWBACK_ENTRY_KINDS)
        ).values_list("kind", "amount", "owed"):
            sums[kind] = sums.get(kind, ZERO) + (entry_amount if kind in CLAWBACK_KINDS else owed - entry_amount)
        for granted_kind, clawback_kind in CLAWBACK_KINDS.items():
            due = clawback_due(
                granted=sums.get(granted_kind, ZERO),
                reversed_amount=reversed_amount,
                credited=credited if credited is not None else amount,
            )
            if money(sums.get(clawback_kind, ZERO)) != due:
                report.add(
                    f"payment {payment_id}: {money(sums.get(clawback_kind, ZERO))} of its {granted_kind} taken back,"
                    f" {due} due"
                )


LEDGER_CHECKS: tuple[Check, ...] = (
    check_wallets,
    check_entries,
    check_debts,
    check_payment_reversals,
    check_clawbacks,
)
