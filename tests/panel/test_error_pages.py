"""Errors are shown in the panel's layout, and the admin never loops a customer around."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_signed_in_customer_opening_the_admin_is_refused_once_not_looped(client: Client) -> None:
    client.force_login(UserFactory(username="shopper"))
    for path in ("/admin/", "/admin/orders/order/"):
        response = client.get(path)
        assert response.status_code == 403
        assert "The admin is for staff." in response.content.decode()
    # Django's admin login page sends to allauth's, which ends at the refusal above.
    response = client.get("/admin/login/?next=/admin/", follow=True)
    assert response.status_code == 403 and len(response.redirect_chain) <= 3


def test_a_visitor_opening_the_admin_is_sent_to_the_login(client: Client) -> None:
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0].startswith("/accounts/login/")


def test_a_missing_page_is_the_panels_404(client: Client, settings, site_conf) -> None:
    site_conf(panel_name="Boost Shop")
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html and 'id="error-page"' in html and "Boost Shop" in html


def test_the_admin_carries_the_panels_name(client: Client, settings, site_conf) -> None:
    site_conf(panel_name="Boost Shop")
    staff = UserFactory(username="boss", is_staff=True, is_superuser=True)
    settings.STAFF_REQUIRE_MFA = False
    client.force_login(staff)
    html = client.get("/admin/").content.decode()
    assert "Django administration" not in html and "Boost Shop · staff" in html


def test_the_500_page_renders_without_a_request_context() -> None:
    from django.template.loader import get_template

    html = get_template("500.html").render({})
    assert "Something went wrong" in html and 'id="error-page"' in html


def test_under_debug_a_missing_page_is_still_the_panels_404(client: Client, settings) -> None:
    """`make run` runs with DEBUG on: its 404 is the panel's page, not Django's URL list."""
    settings.DEBUG = True
    for path in ("/no-such-page/", "/orders/999999999/"):
        client.force_login(UserFactory(username="looker"))
        response = client.get(path)
        assert response.status_code == 404
        html = response.content.decode()
        assert 'id="error-page"' in html and "DEBUG = True" not in html and "URLconf" not in html
        assert "Content-Security-Policy" in response.headers
    settings.PANEL_DEBUG_TECHNICAL_404 = True
    assert "DEBUG = True" in client.get("/no-such-page/").content.decode()
