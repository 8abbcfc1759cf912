from __future__ import annotations

from django import template
from django.urls import Resolver404, resolve

register = template.Library()


@register.simple_tag
def active_nav_url(nav_items: list[tuple[str, str]], path: str) -> str:
    """The navigation entry the page belongs to: the longest entry URL that starts the path."""
    best = ""
    for _label, url in nav_items:
        if url != "/" and path.startswith(url) and len(url) > len(best):
            best = url
    return best


# Bootstrap Icons (js_lib_bootstrap_icons, served locally) for the navigation, by URL name.
NAV_ICONS = {
    "orders:new": "plus-circle",
    "orders:mass": "list-check",
    "orders:list": "bag-check",
    "orders:refills": "arrow-repeat",
    "catalog:services": "grid",
    "wallets:add_funds": "wallet2",
    "wallets:transactions": "receipt",
    "wallets:affiliates": "people",
    "api:page": "code-slash",
    "support:list": "chat-dots",
    "accounts:account": "person-circle",
}


@register.filter
def nav_icon(url: str) -> str:
    """The icon name of a navigation entry (compared by URL name, never by its label)."""
    try:
        match = resolve(url)
    except Resolver404:
        return "dot"
    return NAV_ICONS.get(match.view_name, "dot")
