from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kernel.money import refund_for_remains
from orders.models import Order
from tests.factories import ServiceFactory
from tests.wallets.factories import fund
from wallets.audit import ledger_audit, ledger_audit_run
from wallets.models import Entry, Payment, Wallet
from wallets.services import wallet_credit, wallet_debit
from wallets.tasks import ledger_audit_daily

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def service(db):  # type: ignore[no-untyped-def]
    return ServiceFactory()


def place(user, service, *, charge: str, quantity: int = 1000, debit: bool = True) -> Order:  # type: ignore[no-untyped-def]
    """An order as orders.services places it: the row and its charge entry."""
    order = Order.objects.create(
        user=user, service=service, quantity=quantity, price_per_1000=D(charge), charge=D(charge), link="https://x/y"
    )
    if debit:
        wallet_debit(
            user=user,
            amount=D(charge),
            kind=Entry.Kind.CHARGE,
            idempotency_key=f"order:{order.pk}:charge",
            order_ref=order.pk,
        )
    return order


def finish(order: Order, status: str, *, remains: int | None = None, refund: str | None = None) -> None:
    Order.objects.filter(pk=order.pk).update(status=status, remains=remains)
    if refund is not None:
        wallet_credit(
            user=order.user,
            amount=D(refund),
            kind=Entry.Kind.REFUND,
            idempotency_key=f"order:{order.pk}:refund",
            order_ref=order.pk,
        )


@pytest.fixture
def books(customer, other_customer, service):  # type: ignore[no-untyped-def]
    """A ledger where everything is right: every status, with its refunds."""
    fund(customer, "100")
    fund(other_customer, "50")
    finish(place(customer, service, charge="10"), "Completed")
    finish(place(customer, service, charge="10"), "Canceled", remains=1000, refund="10")
    partial = place(customer, service, charge="3.33333", quantity=3)
    finish(partial, "Partial", remains=1, refund=str(refund_for_remains(charge=D("3.33333"), remains=1, quantity=3)))
    place(other_customer, service, charge="7")  # still Pending
    finish(place(other_customer, service, charge="1"), "In progress")
    return customer


def test_clean_books_pass(books):
    report = ledger_audit_run()
    assert report.ok, report.lines()
    assert report.orders == 5
    assert report.wallets == 2
    assert ledger_audit() == []


def test_a_balance_edited_behind_the_ledgers_back_is_caught(books):
    Wallet.objects.filter(user=books).update(balance=D("1000"))
    violations = ledger_audit()
    assert len(violations) == 1
    assert f"user {books.pk}: balance 1000.00000 but the ledger sums to" in violations[0]


def test_an_entry_written_without_the_services_is_caught(customer):
    fund(customer, "10")
    Entry.objects.create(user=customer, amount=D("5"), kind="bonus", idempotency_key="sneaky", balance_after=D("99"))
    violations = ledger_audit()
    assert any("but the ledger sums to 15" in v for v in violations)
    assert any("balance_after 99.00000, expected 15.00000" in v for v in violations)


def test_entries_without_a_wallet_are_caught(customer):
    Entry.objects.create(user=customer, amount=D("5"), kind="bonus", idempotency_key="sneaky", balance_after=D("5"))
    assert any("no wallet" in v for v in ledger_audit())


def test_a_charge_with_the_wrong_sign_is_caught(customer):
    fund(customer, "10")
    Wallet.objects.filter(user=customer).update(balance=D("15"))
    Entry.objects.create(user=customer, amount=D("5"), kind="charge", idempotency_key="odd", balance_after=D("15"))
    assert any("a charge of 5.00000 has the wrong sign" in v for v in ledger_audit())


def test_an_order_never_charged_is_caught(customer, service):
    order = place(customer, service, charge="2", debit=False)
    assert ledger_audit() == [f"order {order.pk}: 0 charge entries, expected 1"]


def test_an_order_charged_twice_is_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="2")
    wallet_debit(user=customer, amount=D("2"), kind=Entry.Kind.CHARGE, idempotency_key="again", order_ref=order.pk)
    assert ledger_audit() == [f"order {order.pk}: 2 charge entries, expected 1"]


def test_a_charge_of_the_wrong_amount_is_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="2")
    Order.objects.filter(pk=order.pk).update(charge=D("2.5"))
    assert ledger_audit() == [f"order {order.pk}: charged 2.00000 in the ledger but the order says 2.50000"]


def test_refunds_above_the_charge_are_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="2")
    finish(order, "In progress", refund="3")
    assert ledger_audit() == [f"order {order.pk}: refunds 3.00000 exceed the charge 2.00000"]


@pytest.mark.parametrize("refund", [None, "1"])
def test_canceled_without_a_full_refund_is_caught(customer, service, refund):
    fund(customer, "10")
    order = place(customer, service, charge="2")
    finish(order, "Canceled", remains=1000, refund=refund)
    assert ledger_audit() == [f"order {order.pk}: Canceled but refunded {D(refund or 0):.5f} of 2.00000"]


def test_partial_with_the_wrong_refund_is_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="3", quantity=3)
    finish(order, "Partial", remains=1, refund="1.00001")  # the exact share is 1.00000
    assert ledger_audit() == [
        f"order {order.pk}: Partial with 1 of 3 remaining should refund 1.00000, refunded 1.00001"
    ]


def test_partial_without_remains_is_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="3", quantity=3)
    finish(order, "Partial", remains=None, refund="1")
    assert ledger_audit() == [f"order {order.pk}: Partial without remains"]


def test_completed_with_a_refund_is_caught(customer, service):
    fund(customer, "10")
    order = place(customer, service, charge="3")
    finish(order, "Completed", refund="0.5")
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
    order = place(customer, service, charge="2", debit=False)
    wallet_debit(
        user=other_customer,
        amount=D("2"),
        kind=Entry.Kind.CHARGE,
        idempotency_key=f"order:{order.pk}:charge",
        order_ref=order.pk,
    )
    assert ledger_audit() == [f"order {order.pk}: ledger entries of another user than the order's ({customer.pk})"]


def test_a_free_order_needs_no_charge(customer, service):
    place(customer, service, charge="0", debit=False)
    assert ledger_audit() == []


def test_without_the_orders_app_only_the_ledger_is_checked(customer, service):
    place(customer, service, charge="2", debit=False)  # would be a violation
    report = ledger_audit_run(order_model=None)
    assert report.ok
    assert report.orders is None
    assert "orders not checked" in report.summary()


def test_an_order_model_without_the_agreed_fields_is_reported(customer):
    assert ledger_audit(order_model=Payment) == [
        "Payment lacks charge, quantity, remains: order invariants not checked"
    ]


def test_the_order_checks_do_not_query_per_order(customer, service):
    fund(customer, "1000")

    def queries_for_audit() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert ledger_audit() == []
        return len(captured.captured_queries)

    finish(place(customer, service, charge="1"), "Completed")
    few = queries_for_audit()
    for _ in range(30):
        finish(place(customer, service, charge="1"), "Canceled", remains=1000, refund="1")
    assert queries_for_audit() == few


def test_violations_beyond_the_cap_are_counted_not_listed(customer, service):
    for _ in range(5):
        place(customer, service, charge="1", debit=False)
    report = ledger_audit_run(max_violations=2)
    assert report.count == 5
    assert report.lines()[-1] == "... and 3 more violations not listed"
    assert len(report.lines()) == 3


# --- The command and the daily task --------------------------------------------------------


def test_command_exits_0_with_a_summary_when_clean(books, capsys):
    call_command("ledger_audit")
    out = capsys.readouterr().out
    assert "Ledger OK" in out
    assert "5 orders" in out


def test_command_exits_1_naming_each_violation(books, capsys):
    Wallet.objects.filter(user=books).update(balance=D("1000"))
    with pytest.raises(SystemExit) as exited:
        call_command("ledger_audit")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert f"user {books.pk}: balance 1000.00000" in err
    assert "Ledger audit FAILED" in err


def test_command_caps_the_printed_lines(customer, service, capsys):
    for _ in range(5):
        place(customer, service, charge="1", debit=False)
    with pytest.raises(SystemExit):
        call_command("ledger_audit", "--limit", "2")
    err = capsys.readouterr().err
    assert err.count("charge entries, expected 1") == 2
    assert "... and 3 more" in err


def test_daily_task_mails_staff_on_violation(books, settings):
    settings.ADMINS = [("Staff", "staff@example.com")]
    Wallet.objects.filter(user=books).update(balance=D("1000"))
    assert ledger_audit_daily() == 1
    assert len(mail.outbox) == 1
    assert "Ledger audit: 1 violations" in mail.outbox[0].subject
    assert f"user {books.pk}: balance 1000.00000" in mail.outbox[0].body


def test_daily_task_is_quiet_when_clean(books, settings):
    settings.ADMINS = [("Staff", "staff@example.com")]
    assert ledger_audit_daily() == 0
    assert mail.outbox == []


def test_daily_task_has_time_limits():
    assert ledger_audit_daily.name == "wallets.tasks.ledger_audit_daily"
    assert ledger_audit_daily.soft_time_limit and ledger_audit_daily.time_limit
    assert ledger_audit_daily.soft_time_limit < ledger_audit_daily.time_limit
