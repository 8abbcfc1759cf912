"""Reconciliation: the gateways' own lists of payments against ours.

A notification can be lost (an outage here, a webhook misconfigured there). Each gateway
that can list its payments (`Gateway.list_recent`) is asked for those of the last days,
and two kinds of difference are reported: paid at the gateway but not credited here, and
credited here but refunded there. With `fix`, the first is settled through
`payment_settle` and the second reversed through `payment_reverse`, exactly as the lost
notification would have done, under the same ledger keys, so a notification arriving
later (or a second run) moves nothing more.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from kernel.money import ZERO

from .gateways.base import CannotList, GatewayError, Kind, Report
from .gateways.registry import GATEWAYS, gateway_get
from .models import Entry, Payment
from .reversals import CREDITED_STATES, MONEY_BACK, ReversalError
from .services import WalletError, payment_fail, payment_reverse, payment_settle
from .states import PaymentStatus

logger = logging.getLogger(__name__)


class Difference(enum.StrEnum):
    NOT_CREDITED = "paid there, not credited here"
    NOT_REVERSED = "refunded there, still credited here"
    MISMATCH = "paid there with another amount or currency: check by hand"


@dataclass
class Finding:
    gateway: str
    payment_id: int
    reference: str
    difference: Difference
    report: Report
    fixed: bool = False
    problem: str = ""

    def line(self) -> str:
        amount = f"{self.report.amount} {self.report.currency}".strip() if self.report.amount is not None else "?"
        state = "fixed" if self.fixed else (f"not fixed: {self.problem}" if self.problem else "open")
        return f"{self.gateway} payment #{self.payment_id} ({self.reference}): {self.difference} [{amount}] - {state}"


@dataclass
class Reconciliation:
    since: datetime
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # gateways that cannot list, or are off
    errors: list[str] = field(default_factory=list)  # gateways that failed to answer

    @property
    def open(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.fixed]

    def summary(self) -> str:
        fixed = len(self.findings) - len(self.open)
        return (
            f"{self.checked} payment(s) checked since {self.since:%Y-%m-%d %H:%M}; "
            f"{len(self.findings)} difference(s), {fixed} fixed; {len(self.errors)} gateway error(s)"
        )

    def lines(self) -> list[str]:
        return [
            *(finding.line() for finding in self.findings),
            *(f"gateway error: {error}" for error in self.errors),
            *(f"{code}: skipped (cannot list its payments, or not configured)" for code in self.skipped),
        ]


def payments_reconcile(
    *, gateway: str | None = None, days: int = 3, fix: bool = False, now: datetime | None = None
) -> Reconciliation:
    """Compare the gateways' payments of the last `days` days with ours; with `fix`, repair them.

    Network calls (the gateways' lists) are made before any transaction; each repair is
    its own transaction in the settle or reverse path.
    """
    since = (now or timezone.now()) - timedelta(days=days)
    result = Reconciliation(since=since)
    codes = [gateway] if gateway else [code for code, gw in GATEWAYS.items() if gw.kind is Kind.HOSTED]
    for code in codes:
        found = gateway_get(code)
        if not found.configured():
            result.skipped.append(code)
            continue
        try:
            pairs = list(found.list_recent(since=since))
        except CannotList:
            result.skipped.append(code)
            continue
        except GatewayError as exc:
            logger.warning("%s: reconciliation could not list payments: %s", code, exc)
            result.errors.append(f"{code}: {exc}")
            continue
        _compare(result, code=code, pairs=pairs, fix=fix)
    return result


def _compare(result: Reconciliation, *, code: str, pairs: Iterable[tuple[str, Report]], fix: bool) -> None:
    pairs = [(reference, report) for reference, report in pairs if reference]
    ours = {
        payment.external_ref: payment
        for payment in Payment.objects.filter(gateway=code, external_ref__in=[reference for reference, _ in pairs])
    }
    for reference, report in pairs:
        payment = ours.get(reference)
        if payment is None:
            continue  # not a payment of this panel (the account may serve others)
        result.checked += 1
        if report.charge_ref and not payment.charge_ref:
            # A payment paid before its charge was remembered: later refunds and disputes
            # name the charge, so remember it now (no money moves).
            Payment.objects.filter(pk=payment.pk, charge_ref="").update(charge_ref=report.charge_ref[:255])
            payment.charge_ref = report.charge_ref[:255]
        difference = _difference(payment=payment, report=report)
        if difference is None:
            continue
        finding = Finding(
            gateway=code, payment_id=payment.pk, reference=reference, difference=difference, report=report
        )
        result.findings.append(finding)
        if fix and difference is not Difference.MISMATCH:
            _repair(finding, payment=payment)


def _difference(*, payment: Payment, report: Report) -> Difference | None:
    unpaid_here = payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED)
    if report.status == PaymentStatus.PAID and unpaid_here:
        if report.credit is not None or (report.amount == payment.total and report.currency == payment.currency):
            return Difference.NOT_CREDITED
        return Difference.MISMATCH
    money_back = report.status in MONEY_BACK and payment.status in CREDITED_STATES
    if money_back and report.amount is not None and _more_taken_there(payment=payment, report=report):
        return Difference.NOT_REVERSED
    return None


def _taken_there(*, payment: Payment, report: Report) -> Decimal:
    credited = payment.credited if payment.credited is not None else payment.amount
    return min(report.credit if report.credit is not None else report.amount or ZERO, credited)


def _more_taken_there(*, payment: Payment, report: Report) -> bool:
    return _taken_there(payment=payment, report=report) > payment.reversed_amount


def _repair(finding: Finding, *, payment: Payment) -> None:
    report = finding.report
    try:
        if finding.difference is Difference.NOT_CREDITED:
            payment_settle(
                payment_id=payment.pk,
                late=True,
                credit_amount=report.credit,
                raw_notification={"reconciled": finding.reference, "status": str(report.status)},
            )
        else:
            # A list gives the state: everything taken back so far. What this panel has not
            # taken yet (of every kind) is what moves.
            kind = Entry.Kind.CHARGEBACK if report.reversal == Entry.Kind.CHARGEBACK else Entry.Kind.REVERSAL
            total = _taken_there(payment=payment, report=report)
            payment_reverse(
                payment_id=payment.pk,
                amount=total - payment.reversed_amount,
                kind=kind,
                reason=report.note or "refunded at the gateway (found by reconciliation)",
                # The gateway's own id when it gives one (the webhook's key: whichever comes
                # first moves the money); else the total, so a second run moves nothing.
                reference=report.reference or f"reconcile:{total}",
            )
    except (WalletError, ReversalError) as exc:
        finding.problem = str(exc)
        return
    finding.fixed = True


@dataclass
class PendingSweep:
    settled: int = 0
    failed: int = 0
    abandoned: int = 0
    waiting: int = 0
    errors: int = 0


def payments_sweep_pending(
    *, ask_after: timedelta, abandon_after: timedelta, now: datetime | None = None, batch: int = 200
) -> PendingSweep:
    """Ask the gateways about hosted payments still pending: one the gateway says was paid is
    credited (its notification was lost), one it says failed or expired fails, and one still
    pending after `abandon_after` (the customer left the checkout) fails as abandoned. A
    payment that arrives after that still settles late, through the notification or
    reconciliation. This reaches gateways that cannot list their payments (PayPal), and
    finishes what only the panel can: PayPal orders approved but never captured
    (`Gateway.collect`)."""
    now = now or timezone.now()
    swept = PendingSweep()
    hosted = [code for code, gateway in GATEWAYS.items() if gateway.kind is Kind.HOSTED]
    pending = (
        Payment.objects.filter(status=PaymentStatus.PENDING, gateway__in=hosted, created_at__lte=now - ask_after)
        .exclude(external_ref="")
        .order_by("created_at", "pk")[:batch]
    )
    asked: list[tuple[Payment, Report]] = []
    for payment in pending:
        gateway = gateway_get(payment.gateway)
        if not gateway.configured():
            continue
        try:
            # Network, outside any transaction; PayPal captures an order approved and left.
            asked.append((payment, gateway.collect(payment=payment)))
        except GatewayError as exc:
            logger.warning("payment %s: %s could not be asked: %s", payment.pk, payment.gateway, exc)
            swept.errors += 1
    # What was taken there but not credited here goes the reconciliation's way, one pass a gateway.
    settled: set[int] = set()
    for code in {payment.gateway for payment, _ in asked}:
        result = Reconciliation(since=now - ask_after)
        pairs = [(payment.external_ref, report) for payment, report in asked if payment.gateway == code]
        _compare(result, code=code, pairs=pairs, fix=True)
        settled |= {finding.payment_id for finding in result.findings if finding.fixed}
    for payment, report in asked:
        if payment.pk in settled:
            swept.settled += 1
        elif report.status == PaymentStatus.FAILED:
            payment_fail(payment_id=payment.pk, note=report.note or f"{payment.gateway}: failed or expired")
            swept.failed += 1
        elif report.status == PaymentStatus.PENDING and payment.created_at <= now - abandon_after:
            payment_fail(
                payment_id=payment.pk, note="Not paid at the checkout in time; a late payment is still credited."
            )
            swept.abandoned += 1
        else:
            swept.waiting += 1
    return swept
