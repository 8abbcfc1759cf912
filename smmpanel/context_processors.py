from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

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
    from wallets.selectors import wallet_balance

    user = getattr(request, "user", None)
    balance = wallet_balance(user=user) if user is not None and user.is_authenticated else None
    return {
        "PANEL_NAME": settings.PANEL_NAME,
        "PANEL_CURRENCY": settings.PANEL_CURRENCY,
        "nav_items": _nav(),
        "balance": balance,
    }
