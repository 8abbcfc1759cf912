"""The orders' side of the ledger audit: each order's money against its ledger entries.

Orders (by id) and the ledger summed per order (wallets.audit.order_ledgers, by order id)
are two sorted streams merged in one pass, so memory stays flat over millions of orders.
Registered from OrdersConfig.ready(); runs inside the audit's snapshot (kernel.audit).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import DatabaseError, transaction

from kernel import protocol
from kernel.audit import AuditReport
from kernel.money import ZERO, refund_for_remains
from wallets.audit import CHUNK, OrderLedger, entries_without_order, money, order_ledgers

from .models import Order


def check_orders(report: AuditReport) -> None:
    try:
        with transaction.atomic():  # a savepoint: a broken orders table must not hide the rest
            _merge_orders(report)
    except DatabaseError as exc:
        report.add(f"orders could not be checked: {exc}")


def _merge_orders(report: AuditReport) -> None:
    orders = (
        Order.objects.order_by("pk")
        .values_list("pk", "user_id", "status", "charge", "quantity", "remains")
        .iterator(chunk_size=CHUNK)
    )
    ledgers = order_ledgers()
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
            charge=money(charge),
            quantity=quantity,
            remains=remains,
            ledger=mine,
        ):
            report.add(problem)
    while ledger is not None:
        report.add(f"order {ledger.order_ref}: ledger entries but no such order")
        ledger = next(ledgers, None)
    report.counted("orders", count)

    for entry_id, kind in entries_without_order():
        report.add(f"entry {entry_id}: a {kind} without an order")


def order_violations(
    *,
    order_id: int,
    user_id: int,
    status: str,
    charge: Decimal,
    quantity: int,
    remains: int | None,
    ledger: OrderLedger | None,
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
