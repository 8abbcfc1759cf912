from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command

from kernel.money import refund_for_remains
from tests.factories import ServiceFactory
from tests.orders.factories import order_booked, order_finished
from tests.wallets.factories import fund
from wallets.audit import LEDGER_CHECKS, ledger_audit, ledger_audit_run
from wallets.models import Entry, Wallet
from wallets.tasks import ledger_audit_daily

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def service(db):  # type: ignore[no-untyped-def]
    return ServiceFactory()


@pytest.fixture
def books(customer, other_customer, service):  # type: ignore[no-untyped-def]
    """A ledger where everything is right: every status, with its refunds."""
    fund(customer, "100")
    fund(other_customer, "50")
    order_finished(order_booked(customer, service, charge="10"), "Completed")
    order_finished(order_booked(customer, service, charge="10"), "Canceled", remains=1000, refund="10")
    partial = order_booked(customer, service, charge="3.33333", quantity=3)
    order_finished(
        partial, "Partial", remains=1, refund=str(refund_for_remains(charge=D("3.33333"), remains=1, quantity=3))
    )
    order_booked(other_customer, service, charge="7")  # still Pending
    order_finished(order_booked(other_customer, service, charge="1"), "In progress")
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


def test_the_ledger_checks_alone_check_no_order(customer, service):
    order_booked(customer, service, charge="2", debit=False)  # a violation for the orders' check
    report = ledger_audit_run(checks=LEDGER_CHECKS)
    assert report.ok
    assert "orders" not in report.counts
    assert "orders" not in report.summary()


def test_the_summary_names_what_every_check_went_through(books):
    summary = ledger_audit_run().summary()
    assert re.fullmatch(r"2 wallets, \d+ entries, 5 orders; total balance \d+\.\d{5}; 0 violations", summary), summary


def test_violations_beyond_the_cap_are_counted_not_listed(customer, service):
    for _ in range(5):
        order_booked(customer, service, charge="1", debit=False)
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
        order_booked(customer, service, charge="1", debit=False)
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
