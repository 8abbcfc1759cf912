from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from wallets.selectors import wallet_balance

# The customer navigation; entries whose page does not exist yet are left out.
NAV = (
    ("New order", "orders:new"),
    ("Mass order", "orders:mass"),
    ("Orders", "orders:list"),
    ("Refills", "orders:refills"),
    ("Services", "catalog:services"),
    ("Add funds", "wallets:add_funds"),
    ("Transactions", "wallets:transactions"),
    ("Affiliates", "wallets:affiliates"),
    ("API", "api:page"),
    ("Tickets", "support:list"),
    ("Account", "accounts:account"),
)


def _nav() -> list[tuple[str, str]]:
    items = []
    for label, name in NAV:
        try:
            items.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    return items


def panel(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    balance = None
    if user is not None and user.is_authenticated:
        # A page that renders a table (django-tables2) runs the context processors twice.
        balance = getattr(request, "_panel_balance", None)
        if balance is None:
            balance = wallet_balance(user=user)
            request._panel_balance = balance  # type: ignore[attr-defined]
    return {
        "PANEL_NAME": settings.PANEL_NAME,
        "PANEL_CURRENCY": settings.PANEL_CURRENCY,
        "nav_items": _nav(),
        "balance": balance,
    }
