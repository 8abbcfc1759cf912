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

from .models import Entry, Wallet

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


LEDGER_CHECKS: tuple[Check, ...] = (check_wallets, check_entries)
