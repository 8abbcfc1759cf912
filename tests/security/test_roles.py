"""Staff roles (panel/roles.py): groups made by a migration. For each role, every admin action
is walked: the ones the role holds work, the others are not offered and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from accounts.models import User
from panel.roles import ROLES
from tests.factories import UserFactory
from tests.security.test_admin_permissions import (  # noqa: F401  (fixtures)
    ACTIONS,
    OPENS_A_FORM,
    _admin_of,
    _admin_without_mfa_and_loopback_providers,
    _client,
    _request_as,
    changes,
    pks,
    post_action,
    snapshot,
    world,
)

pytestmark = pytest.mark.django_db

# What each role may do in the admin besides looking. An action added later fails here until
# it is given to the roles that should have it.
ROLE_ACTIONS: dict[str, set[str]] = {
    "Owner": {f"{p.values[0]}.{p.values[1]}" for p in ACTIONS},
    "Finance": {
        "currencies.Currency.approve_held",
        "currencies.Currency.delete_selected",
        "currencies.Currency.refresh_now",
        "currencies.Currency.reject_held",
        "orders.Order.cancel_and_refund",
        "wallets.BonusTier.delete_selected",
        "wallets.GatewaySetting.delete_selected",
        "wallets.Payment.approve_selected",
        "wallets.Payment.reject_selected",
        "wallets.Wallet.adjust_funds",
        "wallets.Wallet.forgive_debt",
    },
    "Support": {
        "orders.Order.resend",
        "orders.Order.mark_completed",
        "support.Ticket.close_selected",
        "account.EmailAddress.make_verified",
        "content.NewsPost.delete_selected",
        "webhooks.Event.replay",
    },
    "Catalogue": {
        "catalog.Category.delete_selected",
        "catalog.Service.approve_held",
        "catalog.Service.bulk_edit",
        "catalog.Service.delete_selected",
        "catalog.Service.reject_held",
        "catalog.Service.reprice",
        "catalog.Service.set_custom_rate",
        "catalog.CustomRate.delete_selected",
        "catalog.TextChange.accept",
        "catalog.TextChange.dismiss",
        "providers.Provider.delete_selected",
        "providers.Provider.resume",
        "providers.Provider.sync_services",
        "providers.Provider.test_connection",
        "providers.UpstreamService.delete_selected",
        "providers.UpstreamService.import_into_catalog",
    },
}


def member(role: str) -> User:
    user = UserFactory(username=f"role-{role.lower()}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def test_the_migration_made_every_role():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)
    for role in ROLES:
        codenames = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert {"view_order", "view_payment", "view_service", "view_ticket"} <= codenames


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_is_offered_exactly_its_actions(role):
    user = member(role)
    offered = {
        f"{label}.{action}"
        for label, action in (p.values for p in ACTIONS)
        if action in _admin_of(label).get_actions(_request_as(user))
    }
    assert offered == ROLE_ACTIONS[role]


ROLE_WALK = [
    pytest.param(role, label, action, id=f"{role}:{label}.{action}")
    for role in ROLES
    for label, action in (p.values for p in ACTIONS)
    if action != "delete_selected" and f"{label}.{action}" not in OPENS_A_FORM
]


@pytest.mark.parametrize(("role", "label", "action"), ROLE_WALK)
def test_each_role_can_run_its_actions_and_no_other(world: Any, role: str, label: str, action: str) -> None:
    client = _client(member(role))
    before = snapshot()
    post_action(client, label, action, pks(apps.get_model(label)))
    changed = changes(before, snapshot())
    if f"{label}.{action}" in ROLE_ACTIONS[role]:
        assert changed != []
    else:
        assert changed == []
