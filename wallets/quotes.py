"""Payments made in another currency than the panel's (PayPal in EUR): the quote at creation,
and what arrived converted back at that same rate.

The rate is the currencies app's (units of the other currency per one panel unit), read
when the payment is created and recorded on it (`rate`, `pay_amount`, `pay_currency`); a
stale or missing rate refuses the payment rather than quoting a wrong number. What arrives
is credited at the quoted rate, as paid: an underpayment credits what arrived, an
overpayment the amount asked (the settle path never credits more).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from currencies.selectors import rate_quote
from currencies.services import CurrencyError

from . import conf

if TYPE_CHECKING:
    from .gateways.base import Gateway, Report
    from .models import Payment

# Currencies PayPal (and most processors) take in whole units; others in hundredths.
WHOLE_UNIT_CURRENCIES = frozenset({"HUF", "JPY", "TWD", "KRW", "IDR", "VND", "CLP"})
MONEY_PLACES = Decimal("0.00001")


class QuoteError(Exception):
    """No sound rate to quote at; the message is for the customer."""


def minor_unit(currency: str) -> Decimal:
    return Decimal(1) if currency.upper() in WHOLE_UNIT_CURRENCIES else Decimal("0.01")


def payment_quote(*, gateway: Gateway, total: Decimal) -> dict[str, Any]:
    """The fields a payment through `gateway` records when the gateway takes another currency:
    empty for one paid in the panel's currency. Raises QuoteError on a stale or missing rate."""
    currency = gateway.pay_currency().upper()
    if not currency or currency == conf.currency():
        return {}
    try:
        rate = rate_quote(code=currency)
    except CurrencyError as exc:
        raise QuoteError(
            _("Payments in %(code)s are not possible right now: no current exchange rate. Please try later.")
            % {"code": currency}
        ) from exc
    # What the customer is asked for: the total at the rate, rounded to the currency's unit.
    pay_amount = (total * rate).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
    return {"pay_currency": currency, "pay_amount": pay_amount, "rate": rate}


def credit_at_quote(*, payment: Payment, paid: Decimal) -> Decimal:
    """What `paid` (in the payment's pay currency) credits in the panel's currency: converted
    at the rate quoted at creation, the fee's share removed, rounded down; the settle path
    caps it at the amount."""
    if not payment.rate or paid <= 0:
        return Decimal(0)
    in_panel = paid / payment.rate
    return (in_panel * payment.amount / payment.total).quantize(MONEY_PLACES, rounding=ROUND_DOWN)


def report_at_quote(*, payment: Payment, report: Report) -> Report:
    """A gateway's report in the quoted currency, with what to credit (or take back) in the
    panel's. A report in any other currency is left as it is (the amount check refuses it)."""
    from dataclasses import replace

    if not payment.pay_currency or payment.rate is None or report.amount is None:
        return report
    if report.currency.upper() != payment.pay_currency.upper():
        return report
    return replace(report, credit=credit_at_quote(payment=payment, paid=report.amount))
