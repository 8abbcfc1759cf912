"""The orders' invariants in the ledger audit (orders/audit.py): each order's charge and refunds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kernel.audit import registered_checks
from orders.audit import check_orders
from orders.models import Order
from tests.factories import ServiceFactory
from tests.orders.factories import order_booked, order_finished
from tests.wallets.factories import fund
from wallets.audit import LEDGER_CHECKS, ledger_audit
from wallets.models import Entry
from wallets.services import wallet_debit

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def service(db):  # type: ignore[no-untyped-def]
    return ServiceFactory()


def test_the_order_checks_run_after_the_ledger_checks():
    assert registered_checks() == (*LEDGER_CHECKS, check_orders)


def test_an_order_never_charged_is_caught(customer, service):
    order = order_booked(customer, service, charge="2", debit=False)
    assert ledger_audit() == [f"order {order.pk}: 0 charge entries, expected 1"]


def test_an_order_charged_twice_is_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="2")
    wallet_debit(user=customer, amount=D("2"), kind=Entry.Kind.CHARGE, idempotency_key="again", order_ref=order.pk)
    assert ledger_audit() == [f"order {order.pk}: 2 charge entries, expected 1"]


def test_a_charge_of_the_wrong_amount_is_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="2")
    Order.objects.filter(pk=order.pk).update(charge=D("2.5"))
    assert ledger_audit() == [f"order {order.pk}: charged 2.00000 in the ledger but the order says 2.50000"]


def test_refunds_above_the_charge_are_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="2")
    order_finished(order, "In progress", refund="3")
    assert ledger_audit() == [f"order {order.pk}: refunds 3.00000 exceed the charge 2.00000"]


@pytest.mark.parametrize("refund", [None, "1"])
def test_canceled_without_a_full_refund_is_caught(customer, service, refund):
    fund(customer, "10")
    order = order_booked(customer, service, charge="2")
    order_finished(order, "Canceled", remains=1000, refund=refund)
    assert ledger_audit() == [f"order {order.pk}: Canceled but refunded {D(refund or 0):.5f} of 2.00000"]


def test_partial_with_the_wrong_refund_is_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="3", quantity=3)
    order_finished(order, "Partial", remains=1, refund="1.00001")  # the exact share is 1.00000
    assert ledger_audit() == [
        f"order {order.pk}: Partial with 1 of 3 remaining should refund 1.00000, refunded 1.00001"
    ]


def test_partial_without_remains_is_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="3", quantity=3)
    order_finished(order, "Partial", remains=None, refund="1")
    assert ledger_audit() == [f"order {order.pk}: Partial without remains"]


def test_completed_with_a_refund_is_caught(customer, service):
    fund(customer, "10")
    order = order_booked(customer, service, charge="3")
    order_finished(order, "Completed", refund="0.5")
    assert ledger_audit() == [f"order {order.pk}: Completed but refunded 0.50000"]


def test_ledger_entries_for_a_missing_order_are_caught(customer):
    fund(customer, "10")
    wallet_debit(
        user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="order:424242:charge", order_ref=424242
    )
    assert ledger_audit() == ["order 424242: ledger entries but no such order"]


def test_a_charge_without_an_order_reference_is_caught(customer):
    fund(customer, "10")
    wallet_debit(user=customer, amount=D("1"), kind=Entry.Kind.CHARGE, idempotency_key="loose")
    violations = ledger_audit()
    assert len(violations) == 1
    assert violations[0].endswith("a charge without an order")


def test_an_order_charged_to_another_user_is_caught(customer, other_customer, service):
    fund(other_customer, "10")
    order = order_booked(customer, service, charge="2", debit=False)
    wallet_debit(
        user=other_customer,
        amount=D("2"),
        kind=Entry.Kind.CHARGE,
        idempotency_key=f"order:{order.pk}:charge",
        order_ref=order.pk,
    )
    assert ledger_audit() == [f"order {order.pk}: ledger entries of another user than the order's ({customer.pk})"]


def test_a_free_order_needs_no_charge(customer, service):
    order_booked(customer, service, charge="0", debit=False)
    assert ledger_audit() == []


def test_the_order_checks_do_not_query_per_order(customer, service):
    fund(customer, "1000")

    def queries_for_audit() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert ledger_audit() == []
        return len(captured.captured_queries)

    order_finished(order_booked(customer, service, charge="1"), "Completed")
    few = queries_for_audit()
    for _ in range(30):
        order_finished(order_booked(customer, service, charge="1"), "Canceled", remains=1000, refund="1")
    assert queries_for_audit() == few
