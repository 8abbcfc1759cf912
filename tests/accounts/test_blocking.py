"""Blocked customers can neither log in nor use the API; staff with the permission block and
unblock them from the admin, with a reason."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import User
from accounts.services import BlockError, api_key_issue, user_block
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def staff_with(*codenames: str) -> User:
    user = UserFactory(username="ops", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_user", *codenames]))
    return User.objects.get(pk=user.pk)


def post_action(client, action: str, users: list[User], **extra: str):
    data = {"action": action, "_selected_action": [u.pk for u in users], **extra}
    return client.post(reverse("admin:accounts_user_changelist"), data, follow=True)


def test_a_blocked_customer_is_logged_out_and_refused_by_the_api(client, customer, settings):
    settings.STAFF_REQUIRE_MFA = False
    key = api_key_issue(user=customer)
    client.force_login(customer)
    assert client.get(reverse("orders:list")).status_code == 200
    admin_client = client.__class__()
    admin_client.force_login(staff_with("block_user"))
    response = post_action(admin_client, "block", [customer], confirm="yes", reason="card fraud")
    assert "is blocked" in response.content.decode()
    customer.refresh_from_db()
    assert not customer.is_active and customer.blocked_reason.startswith("card fraud")
    # The open session no longer authenticates; the API key is refused.
    assert client.get(reverse("orders:list")).status_code == 302
    assert client.post("/api/v2", {"key": key, "action": "balance"}).json() == {"error": "Invalid API key"}
    post_action(admin_client, "unblock", [customer])
    customer.refresh_from_db()
    assert customer.is_active and customer.blocked_reason == ""
    assert client.post("/api/v2", {"key": key, "action": "balance"}).json()["currency"]


def test_staff_without_the_permission_cannot_block(client, customer, settings):
    settings.STAFF_REQUIRE_MFA = False
    client.force_login(staff_with())
    post_action(client, "block", [customer], confirm="yes", reason="x")
    customer.refresh_from_db()
    assert customer.is_active


def test_staff_and_oneself_are_not_blocked(customer):
    boss = UserFactory(username="boss", is_staff=True)
    with pytest.raises(BlockError):
        user_block(user_id=boss.pk, actor=customer, reason="x")
    with pytest.raises(BlockError):
        user_block(user_id=customer.pk, actor=customer, reason="x")
    with pytest.raises(BlockError):
        user_block(user_id=customer.pk, actor=boss, reason=" ")
