"""Money rules, in one place.

Amounts have 5 decimal places, rates per 1000 have 6. Charges round half-up; refunds
round down, so a refund can never exceed the charge it comes from.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

MONEY_PLACES = Decimal("0.00001")
RATE_PLACES = Decimal("0.000001")
ZERO = Decimal("0")
THOUSAND = Decimal("1000")
HUNDRED = Decimal("100")


# A number as written in ASCII: sign, digits, a decimal point, an exponent ("1e-05" is how
# str() writes a small float).
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", flags=re.ASCII)
# No amount, rate or count the panel handles reaches 10**21.
MAX_EXPONENT = 20


class MoneyFormatError(ValueError):
    pass


def to_decimal(value: object) -> Decimal:
    """Parse an upstream or user number without ever going through binary floats."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or value is None:
        raise MoneyFormatError(f"not a number: {value!r}")
    else:
        text = str(value).strip()
        # Decimal() also reads other scripts' digits ("١٠" is 10) and underscores ("1_0").
        if not DECIMAL_TEXT.fullmatch(text):
            raise MoneyFormatError(f"not a number: {value!r}")
        try:
            result = Decimal(text)
        except (InvalidOperation, ValueError) as exc:
            raise MoneyFormatError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyFormatError(f"not a finite number: {value!r}")
    if result.adjusted() > MAX_EXPONENT:
        # "1e999999" is finite, but int() of it builds a million-digit number.
        raise MoneyFormatError(f"too large: {value!r}")
    return result


def money(value: Decimal) -> Decimal:
    """Round an amount half-up to 5 places (charges, prices shown as amounts)."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_HALF_UP)


def money_down(value: Decimal) -> Decimal:
    """Round an amount down to 5 places (refunds)."""
    return value.quantize(MONEY_PLACES, rounding=ROUND_DOWN)


def rate(value: Decimal) -> Decimal:
    """Round a rate per 1000 half-up to 6 places."""
    return value.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def charge_for(*, rate_per_1000: Decimal, quantity: int) -> Decimal:
    return money(rate_per_1000 * quantity / THOUSAND)


def amount_for(*, rate: Decimal, units: int, per: int) -> Decimal:
    """What `units` cost at `rate` for every `per` of them (1000, or 1 for packages)."""
    return money(rate * units / per)


def refund_for_remains(*, charge: Decimal, remains: int, quantity: int) -> Decimal:
    """The part of a charge for units not delivered, rounded down and capped at the charge."""
    if quantity <= 0 or remains <= 0:
        return ZERO
    remains = min(remains, quantity)
    return min(charge, money_down(charge * remains / quantity))


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return money_down(amount * percent / HUNDRED)
