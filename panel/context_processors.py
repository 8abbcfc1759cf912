from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from siteconf.selectors import site_settings
from wallets.selectors import wallet_figures

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
    balance = debt = None
    if user is not None and user.is_authenticated:
        # A page that renders a table (django-tables2) runs the context processors twice.
        figures = getattr(request, "_panel_wallet", None)
        if figures is None:
            figures = wallet_figures(user=user)
            request._panel_wallet = figures  # type: ignore[attr-defined]
        balance, debt = figures
    conf = site_settings()
    return {
        "PANEL_NAME": conf.panel_name,
        "PANEL_CURRENCY": conf.base_currency,
        # The logo, support e-mail and legal links (includes/footer_links.html).
        "SITE": conf,
        "nav_items": _nav(),
        "balance": balance,
        # What the customer owes after a payment was taken back; orders wait until it is paid.
        "debt": debt,
    }
