"""Staff roles: Django groups holding the permissions each kind of work needs.

Every admin action and page asks for its own permission (docs/DESIGN.md, Staff); a role is a
named set of them. Every role may look at everything (the `view_*` permissions); what it may
change is listed here. A superuser needs no role.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Apps whose permissions the roles hand out.
PANEL_APPS = (
    "siteconf",
    "accounts",
    "currencies",
    "providers",
    "catalog",
    "wallets",
    "orders",
    "support",
    "content",
    "webhooks",
    "account",
    "mfa",
    "auth",
)

# role -> permissions beyond viewing, as "app_label.codename"; "app_label.*" is every
# permission of that app.
ROLES: dict[str, tuple[str, ...]] = {
    # Runs the business: everything the admin can do, staff accounts and roles included, and
    # alone the panel configuration (siteconf) and the terms, FAQ and contact pages (content).
    "Owner": tuple(f"{app}.*" for app in PANEL_APPS),
    # Money: payments, gateway settings, bonus tiers, adjustments, refunds of orders, currency rates.
    "Finance": ("wallets.*", "currencies.*", "orders.refund_order"),
    # Customers' questions: tickets, and order actions that move no money.
    "Support": (
        "support.add_ticket",
        "support.change_ticket",
        "support.add_message",
        "orders.resend_order",
        "orders.complete_order",
        "webhooks.replay_event",
        "account.change_emailaddress",
        # News and announcements (the pages' texts stay the Owner's).
        "content.add_newspost",
        "content.change_newspost",
        "content.delete_newspost",
        "accounts.impersonate_user",
    ),
    # What is sold: providers, services, categories, routes, prices, imports.
    "Catalogue": ("providers.*", "catalog.*"),
}


def role_permissions(role: str, permissions: Iterable[Any]) -> list[Any]:
    """The Permission rows (real or historical models) that `role` holds."""
    wanted = ROLES[role]
    whole_apps = {w[:-2] for w in wanted if w.endswith(".*")}
    single = {w for w in wanted if not w.endswith(".*")}
    chosen = []
    for permission in permissions:
        app = permission.content_type.app_label
        if app not in PANEL_APPS:
            continue
        name = f"{app}.{permission.codename}"
        if permission.codename.startswith("view_") or app in whole_apps or name in single:
            chosen.append(permission)
    return chosen


def roles_sync(*, group_model: Any, permission_model: Any) -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    permissions = list(permission_model.objects.select_related("content_type"))
    for role in ROLES:
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(role, permissions))
