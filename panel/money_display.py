"""How money is shown to people: one display rule, one place.

Stored amounts are exact (5 places, rates 6); the pages round them for reading. A value is
shown with its currency's decimals (2 for most), and with more only where that would show a
non-zero price as zero or hide most of it (a rate of 0.0533 reads 0.053, not 0.05). Pages
show amounts in the customer's display currency, marked "≈" when converted; the ledger and
the API stay exact and in the panel's currency.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import formats, translation
from django.utils.translation import get_language

from siteconf.selectors import site_settings

# Significant digits kept for a value below one unit, and the most decimals ever shown.
SMALL_VALUE_DIGITS = 2
MAX_DECIMALS = 6
# Currencies whose minor unit is not a hundredth (ISO 4217 exponents).
DECIMALS = {"JPY": 0, "KRW": 0, "VND": 0, "IDR": 0, "CLP": 0, "HUF": 0, "BTC": 8, "ETH": 8, "USDT": 2}


@dataclass(frozen=True)
class DisplayCurrency:
    """A currency amounts are shown in: `rate` units of it buy one unit of the panel's."""

    code: str
    rate: Decimal
    decimals: int = 2
    symbol: str = ""

    @property
    def converted(self) -> bool:
        return self.code != base_currency()


def base_currency() -> str:
    """The panel's own currency: the ledger, the API and every stored amount use it."""
    return site_settings().base_currency


def base_display() -> DisplayCurrency:
    code = base_currency()
    return DisplayCurrency(code=code, rate=Decimal(1), decimals=decimals_for(code))


def decimals_for(code: str) -> int:
    return DECIMALS.get(code.upper(), 2)


def places_for(value: Decimal, decimals: int) -> int:
    """Decimals to show `value` with: the currency's, more only for a small non-zero value."""
    if value == 0 or abs(value) >= 1:
        return decimals
    # adjusted() is the exponent of the first significant digit: -2 for 0.0533.
    wanted = -abs(value).adjusted() + SMALL_VALUE_DIGITS - 1
    return max(decimals, min(wanted, MAX_DECIMALS))


def round_for_display(value: Decimal, decimals: int) -> Decimal:
    places = places_for(value, decimals)
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def format_number(value: Decimal, decimals: int = 2) -> str:
    """The number alone, rounded by the display rule, in the active language's notation."""
    rounded = round_for_display(value, decimals)
    places = max(0, -int(rounded.as_tuple().exponent))
    if places > decimals:
        # Extra places are there for the significant digits only: drop their trailing zeros.
        places = max(decimals, -int(rounded.normalize().as_tuple().exponent))
    decimal_separator, thousand_separator, grouping = _notation(get_language())
    if grouping != 3:
        return formats.number_format(rounded, decimal_pos=places, use_l10n=True, force_grouping=True)
    # Groups of three (every shipped language): Python's own formatting, then the language's
    # marks (a page of a thousand prices spent a fifth of its time in number_format).
    text = f"{rounded:,.{places}f}"
    if decimal_separator != "." or thousand_separator != ",":
        text = text.translate({ord(","): thousand_separator, ord("."): decimal_separator})
    return text


@functools.cache
def _notation(language: str | None) -> tuple[str, str, Any]:
    """The language's decimal mark, thousands mark and grouping (Django's format files)."""
    with translation.override(language):
        return (
            str(formats.get_format("DECIMAL_SEPARATOR", use_l10n=True)),
            str(formats.get_format("THOUSAND_SEPARATOR", use_l10n=True)),
            formats.get_format("NUMBER_GROUPING", use_l10n=True),
        )


def convert(value: Decimal, currency: DisplayCurrency) -> Decimal:
    return value * currency.rate


def format_money(value: Decimal, currency: DisplayCurrency | None = None) -> tuple[str, bool]:
    """`value` (in the panel's currency) as text in `currency`, and whether it was converted."""
    currency = currency or base_display()
    converted = currency.converted
    shown = convert(value, currency) if converted else value
    text = f"{format_number(shown, currency.decimals)} {currency.code}"
    return (f"≈ {text}" if converted else text), converted
