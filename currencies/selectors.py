"""Reads: the currencies customers may pick, and rates to quote a payment at."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from . import conf
from .models import Currency
from .services import CurrencyError


def currencies_offered() -> list[Currency]:
    """Enabled currencies with a rate that is not stale, by code."""
    now = timezone.now()
    return [
        currency for currency in Currency.objects.filter(enabled=True, rate__isnull=False) if not currency.is_stale(now)
    ]


def display_choice(*, user_code: str, session_code: str) -> tuple[str, list[Currency]]:
    """The code the customer chose (their account's, else the session's) and the offered list.

    One query: the table is small and both the switcher and the conversion need it.
    """
    offered = currencies_offered()
    return (user_code or session_code or "").upper(), offered


def rate_quote(*, code: str) -> Decimal:
    """Units of `code` per one unit of the panel's currency, to quote a payment at.

    Raises CurrencyError when there is no rate or it is stale: a payment is never quoted at
    a wrong number.
    """
    code = code.upper()
    if code == conf.base_currency():
        return Decimal(1)
    currency = Currency.objects.filter(code=code).first()
    if currency is None or currency.rate is None:
        raise CurrencyError(_("No exchange rate for %(code)s.") % {"code": code})
    if currency.is_stale(timezone.now()):
        raise CurrencyError(_("The exchange rate for %(code)s is out of date.") % {"code": code})
    return currency.rate
