"""The Owner changes the panel configuration in the admin, in a real browser, and the
customer-facing pages follow at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from panel.roles import roles_sync
from siteconf.models import SiteSettings
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_owner_renames_the_panel_and_closes_sign_up(visitors: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    owner = UserFactory(username="owner", is_staff=True)
    # A transactional test's flush empties the groups the migrations made: make them again.
    roles_sync(group_model=Group, permission_model=Permission)
    owner.groups.add(Group.objects.get(name="Owner"))
    staff = visitors("owner")
    page = staff.page
    staff.go("/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")
    page.fill("[name=login]", "owner")
    page.fill("[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/admin/")
    staff.go("/admin/siteconf/sitesettings/")
    page.wait_for_selector("#id_panel_name")
    staff.shoot("admin-panel-configuration")
    page.fill("#id_panel_name", "Boost Shop")
    page.fill("#id_support_email", "help@boost.example")
    page.uncheck("#id_signup_open")
    page.locator("[name=_save]").click()
    page.wait_for_selector(".messagelist")
    assert SiteSettings.objects.get(pk=1).panel_name == "Boost Shop"
    assert SiteSettings.history.latest().history_user_id == owner.pk

    guest = visitors("guest")
    guest.go("/")
    assert guest.page.locator(".navbar-brand").inner_text().strip() == "Boost Shop"
    assert guest.page.locator("a[href='/accounts/signup/']").count() == 0
    guest.go("/accounts/signup/")
    assert "closed" in guest.page.content().lower()
    guest.go("/contact/")
    assert guest.page.locator("a[href='mailto:help@boost.example']").is_visible()
    assert not staff.errors and not guest.errors
