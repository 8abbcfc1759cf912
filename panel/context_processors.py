from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from siteconf.selectors import site_settings
from wallets.selectors import wallet_figures

# The customer navigation: (key, label, URL name); entries whose page does not exist yet are
# left out. Templates pick an entry by its key (`nav_urls.add_funds`), never by its label,
# which is translated.
NAV: tuple[tuple[str, Promise, str], ...] = (
    ("new_order", _("New order"), "orders:new"),
    ("mass_order", _("Mass order"), "orders:mass"),
    ("orders", _("Orders"), "orders:list"),
    ("refills", _("Refills"), "orders:refills"),
    ("services", _("Services"), "catalog:services"),
    ("add_funds", _("Add funds"), "wallets:add_funds"),
    ("transactions", _("Transactions"), "wallets:transactions"),
    ("affiliates", _("Affiliates"), "wallets:affiliates"),
    ("api", _("API"), "api:page"),
    ("tickets", _("Tickets"), "support:list"),
    ("account", _("Account"), "accounts:account"),
)


def _nav() -> list[tuple[str, Promise, str]]:
    items = []
    for key, label, name in NAV:
        try:
            items.append((key, label, reverse(name)))
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
    nav = _nav()
    conf = site_settings()
    return {
        "PANEL_NAME": conf.panel_name,
        "PANEL_CURRENCY": conf.base_currency,
        # The logo, support e-mail and legal links (includes/footer_links.html).
        "SITE": conf,
        # (label, URL) pairs in menu order, and each entry's URL by key.
        "nav_items": [(label, url) for _key, label, url in nav],
        "nav_urls": {key: url for key, _label, url in nav},
        "balance": balance,
        # What the customer owes after a payment was taken back; orders wait until it is paid.
        "debt": debt,
    }
