"""The `display_currency` every page's {% money %} tag reads (panel/money_display.py).

The customer's choice (their account's, else the session's for a visitor), when that
currency is offered and its rate is not stale; otherwise None, and amounts are shown in the
panel's own currency: a stale rate is never shown as a number.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from currencies.selectors import currencies_offered
from currencies.services import SESSION_KEY

from .money_display import DisplayCurrency, base_currency


def display_currency(request: HttpRequest) -> dict[str, Any]:
    cached = getattr(request, "_panel_display_currency", None)
    if cached is not None:
        return cached  # a page with a table runs the context processors twice
    user = getattr(request, "user", None)
    chosen = ""
    if user is not None and user.is_authenticated:
        chosen = user.display_currency
    session = getattr(request, "session", None)
    if not chosen and session is not None:
        chosen = str(session.get(SESSION_KEY) or "")
    offered = currencies_offered()
    display = None
    for currency in offered:
        if currency.code == chosen.upper() and currency.rate is not None:
            display = DisplayCurrency(
                code=currency.code, rate=currency.rate, decimals=currency.decimals, symbol=currency.symbol
            )
    context = {
        "display_currency": display,
        "display_currency_code": display.code if display else base_currency(),
        "display_currency_choices": [base_currency(), *(c.code for c in offered if c.code != base_currency())],
    }
    request._panel_display_currency = context  # type: ignore[attr-defined]
    return context
