"""`{% money %}`: every amount a page shows goes through it.

{% money order.charge %}              in the customer's display currency ("≈ 89.20 EUR"
                                      when converted), the exact amount in the title
{% money payment.amount currency=payment.currency %}
                                      an amount already in that currency: not converted
{% money entry.amount exact=True %}   the stored value, all its places, panel currency
{% money rate plain=True %}           text only (for attributes, options, e-mails)
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template
from django.utils.html import format_html

from kernel.money import to_decimal
from panel.money_display import DisplayCurrency, base_currency, decimals_for, format_money, format_number

register = template.Library()


@register.simple_tag(takes_context=True)
def money(
    context: template.Context,
    value: Any,
    *,
    currency: str = "",
    exact: bool = False,
    plain: bool = False,
) -> str:
    if value is None or value == "":
        return ""
    amount = to_decimal(value)
    base = base_currency()
    if exact:
        text, converted = f"{amount} {base}", False
    elif currency and currency != base:
        text, converted = f"{format_number(amount, decimals_for(currency))} {currency}", False
    else:
        display: DisplayCurrency | None = context.get("display_currency")
        text, converted = format_money(amount, display)
    if plain:
        return text
    # normalize() alone writes 10 as "1E+1": format it as fixed-point.
    exact_text = f"{amount.normalize() if amount == amount.to_integral() else amount:f} {currency or base}"
    css = "money money-approx" if converted else "money"
    return format_html('<span class="{}" title="{}" data-amount="{}">{}</span>', css, exact_text, amount, text)


@register.filter
def readable(value: Any, decimals: int = 2) -> str:
    """A number (rate, percentage) rounded by the display rule, without a currency."""
    if value is None or value == "":
        return ""
    return format_number(Decimal(to_decimal(value)), int(decimals))


@register.filter
def percent(value: Any) -> str:
    """A percentage as people write it: up to two decimals, none that are zeros (12, 12.5)."""
    if value is None or value == "":
        return ""
    rounded = Decimal(to_decimal(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    places = max(0, -int(rounded.normalize().as_tuple().exponent))
    return format_number(rounded, places)
