"""The ledger audit: the money invariants of DESIGN.md, checked over the whole database.

Every check is a handful of set-based queries, never a query per user or per order: the
order checks stream two sorted result sets (orders by id, ledger entries aggregated by
order) and merge them, so memory stays flat over millions of orders. Everything runs in
one snapshot (REPEATABLE READ on PostgreSQL) so orders placed while the audit runs cannot
produce false alarms.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from django.db.models import Count, DecimalField, F, Max, Min, OuterRef, Q, Subquery, Sum, Value, Window
from django.db.models.functions import Coalesce, Lag, Round

from kernel import protocol
from kernel.money import MONEY_PLACES, ZERO, refund_for_remains

from .models import Entry, Wallet

DEFAULT_MAX_VIOLATIONS = 10_000
ORDER_FIELDS = ("id", "user", "charge", "quantity", "remains", "status")
CHUNK = 5_000
POSITIVE_KINDS = (Entry.Kind.DEPOSIT, Entry.Kind.BONUS, Entry.Kind.REFUND, Entry.Kind.COMMISSION)
_MONEY_FIELD: DecimalField = DecimalField(max_digits=18, decimal_places=5)


@dataclass
class AuditReport:
    violations: list[str] = field(default_factory=list)
    not_listed: int = 0
    max_violations: int = DEFAULT_MAX_VIOLATIONS
    wallets: int = 0
    entries: int = 0
    orders: int | None = None  # None: the orders app is not there, its checks did not run
    total_balance: Decimal = ZERO

    def add(self, text: str) -> None:
        if len(self.violations) < self.max_violations:
            self.violations.append(text)
        else:
            self.not_listed += 1

    @property
    def count(self) -> int:
        return len(self.violations) + self.not_listed

    @property
    def ok(self) -> bool:
        return self.count == 0

    def lines(self) -> list[str]:
        if self.not_listed:
            return [*self.violations, f"... and {self.not_listed} more violations not listed"]
        return list(self.violations)

    def summary(self) -> str:
        orders = "orders not checked (no orders app)" if self.orders is None else f"{self.orders} orders"
        return (
            f"{self.wallets} wallets, {self.entries} entries, {orders}; "
            f"total balance {self.total_balance}; {self.count} violations"
        )


def order_model_or_none() -> type[models.Model] | None:
    """orders.models.Order when that app provides it (it is built separately)."""
    try:
        module = importlib.import_module("orders.models")
    except ImportError:
        return None
    model = getattr(module, "Order", None)
    return model if isinstance(model, type) and issubclass(model, models.Model) else None


_FIND = object()


def ledger_audit(*, order_model: Any = _FIND, max_violations: int = DEFAULT_MAX_VIOLATIONS) -> list[str]:
    """Every violated invariant, one line each (an empty list when the books balance)."""
    return ledger_audit_run(order_model=order_model, max_violations=max_violations).lines()


def ledger_audit_run(*, order_model: Any = _FIND, max_violations: int = DEFAULT_MAX_VIOLATIONS) -> AuditReport:
    if order_model is _FIND:
        order_model = order_model_or_none()
    report = AuditReport(max_violations=max_violations)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        _check_wallets(report)
        _check_entries(report)
        if order_model is not None:
            _check_orders(report, order_model)
    return report


def _rounded(expression: Any) -> Round:
    # SQLite keeps decimals as floats: compare at 5 places so float noise is not a finding
    # (a real difference is at least 0.00001). On PostgreSQL numeric this changes nothing.
    return Round(expression, 5, output_field=_MONEY_FIELD)


def _check_wallets(report: AuditReport) -> None:
    totals = Wallet.objects.aggregate(n=Count("user_id"), total=Sum("balance"))
    report.wallets = totals["n"]
    report.total_balance = (totals["total"] or ZERO).quantize(MONEY_PLACES)

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
        report.add(f"user {user_id}: balance {_money(balance)} but the ledger sums to {_money(ledger)}")

    orphans = (
        Entry.objects.exclude(user_id__in=Wallet.objects.values("user_id"))
        .order_by()
        .values("user_id")
        .annotate(total=Sum("amount"))
        .order_by("user_id")
    )
    for row in orphans.iterator(chunk_size=CHUNK):
        report.add(f"user {row['user_id']}: ledger entries summing to {_money(row['total'])} but no wallet")


def _check_entries(report: AuditReport) -> None:
    report.entries = Entry.objects.count()
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
            f"entry {entry_id} (user {user_id}): balance_after {_money(balance_after)}, expected {_money(expected)}"
        )


@dataclass(frozen=True)
class _OrderLedger:
    order_ref: int
    charges: int
    charged: Decimal
    refunded: Decimal
    min_user: int
    max_user: int


def _order_ledgers() -> Iterator[_OrderLedger]:
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
        yield _OrderLedger(
            order_ref=row["order_ref"],
            charges=row["charges"],
            charged=_money(row["charged"]),
            refunded=_money(row["refunded"]),
            min_user=row["min_user"],
            max_user=row["max_user"],
        )


def _money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(MONEY_PLACES)


def _check_orders(report: AuditReport, order_model: type[models.Model]) -> None:
    names = {f.name for f in order_model._meta.get_fields()}
    missing = [name for name in ORDER_FIELDS if name not in names]
    if missing:
        report.add(f"{order_model.__name__} lacks {', '.join(missing)}: order invariants not checked")
        return
    try:
        with transaction.atomic():  # a savepoint: a broken orders table must not hide the rest
            _merge_orders(report, order_model)
    except DatabaseError as exc:
        report.add(f"orders could not be checked: {exc}")


def _merge_orders(report: AuditReport, order_model: type[models.Model]) -> None:
    orders = (
        order_model._default_manager.order_by("pk")
        .values_list("pk", "user_id", "status", "charge", "quantity", "remains")
        .iterator(chunk_size=CHUNK)
    )
    ledgers = _order_ledgers()
    ledger = next(ledgers, None)
    count = 0
    for order_id, user_id, status, charge, quantity, remains in orders:
        count += 1
        # Ledger rows for order ids below this one have no order.
        while ledger is not None and ledger.order_ref < order_id:
            report.add(f"order {ledger.order_ref}: ledger entries but no such order")
            ledger = next(ledgers, None)
        mine = None
        if ledger is not None and ledger.order_ref == order_id:
            mine, ledger = ledger, next(ledgers, None)
        for problem in order_violations(
            order_id=order_id,
            user_id=user_id,
            status=status,
            charge=_money(charge),
            quantity=quantity,
            remains=remains,
            ledger=mine,
        ):
            report.add(problem)
    while ledger is not None:
        report.add(f"order {ledger.order_ref}: ledger entries but no such order")
        ledger = next(ledgers, None)
    report.orders = count

    no_order = Entry.objects.filter(kind__in=(Entry.Kind.CHARGE, Entry.Kind.REFUND), order_ref__isnull=True)
    for entry_id, kind in no_order.order_by("id").values_list("id", "kind").iterator(chunk_size=CHUNK):
        report.add(f"entry {entry_id}: a {kind} without an order")


def order_violations(
    *,
    order_id: int,
    user_id: int,
    status: str,
    charge: Decimal,
    quantity: int,
    remains: int | None,
    ledger: _OrderLedger | None,
) -> list[str]:
    """What is wrong with one order's money, given its ledger aggregate."""
    problems: list[str] = []
    charges = ledger.charges if ledger else 0
    charged = -ledger.charged if ledger else ZERO
    refunded = ledger.refunded if ledger else ZERO
    # An order that cost nothing has nothing to charge (ledger amounts are never zero).
    expected_charges = 1 if charge > 0 else 0
    if charges != expected_charges:
        problems.append(f"order {order_id}: {charges} charge entries, expected {expected_charges}")
    elif charged != charge:
        problems.append(f"order {order_id}: charged {charged} in the ledger but the order says {charge}")
    if refunded > charge:
        problems.append(f"order {order_id}: refunds {refunded} exceed the charge {charge}")
    if status == protocol.CANCELED and refunded != charge:
        problems.append(f"order {order_id}: Canceled but refunded {refunded} of {charge}")
    elif status == protocol.PARTIAL:
        if remains is None:
            problems.append(f"order {order_id}: Partial without remains")
        else:
            expected = refund_for_remains(charge=charge, remains=remains, quantity=quantity)
            if refunded != expected:
                problems.append(
                    f"order {order_id}: Partial with {remains} of {quantity} remaining should refund {expected}, "
                    f"refunded {refunded}"
                )
    elif status == protocol.COMPLETED and refunded != 0:
        problems.append(f"order {order_id}: Completed but refunded {refunded}")
    if ledger and not (ledger.min_user == ledger.max_user == user_id):
        problems.append(f"order {order_id}: ledger entries of another user than the order's ({user_id})")
    return problems
