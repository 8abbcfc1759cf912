"""The owner's console in chromium: a staff member clears the work queue (a pending manual
transfer, ten unknown orders in bulk, a held price, a ticket) from the dashboard; the admin
lists fit 1280 px without sideways scrolling; "log in as" shows the customer's pages and
cannot change their password or API key."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from allauth.account.models import EmailAddress

from accounts.models import ApiKey, Impersonation
from accounts.services import api_key_issue
from orders.models import Order
from support import services as support_services
from support.models import Ticket
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, ProviderFactory, ServiceFactory, UserFactory
from tests.support.conftest import make_order
from wallets.models import Payment
from wallets.selectors import wallet_balance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REFERENCE = "SEPA 2026-11-29 / Carol Customer / invoice 000123456789 / ref. PANEL-TOPUP-CAROL-120-USD"


def _person(username: str, **extra: Any) -> Any:
    user = UserFactory(username=username, email=f"{username}@example.com", **extra)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _log_in(visitors: Any, user: Any) -> Any:
    visitor = visitors(user.username)
    visitor.go("/accounts/login/")
    visitor.page.fill("[name=login]", user.username)
    visitor.page.fill("[name=password]", PASSWORD)
    visitor.page.get_by_role("button", name="Sign In").click()
    visitor.page.wait_for_load_state()
    return visitor


def _shoot_desktop(visitor: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    visitor.page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)


def _run_action(page: Any, action: str) -> None:
    page.check("#action-toggle")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()


def _count(page: Any, key: str) -> str:
    return page.locator(f"#attention-{key} .dash-count").inner_text().strip()


def test_staff_clears_the_work_queue_from_the_dashboard(visitors: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    carol = _person("carol")
    boss = _person("boss", is_staff=True, is_superuser=True)
    transfer = Payment.objects.create(
        user=carol, gateway="manual", amount=D("120"), currency="USD", status="pending", external_ref=REFERENCE
    )
    provider = ProviderFactory(name="Upstream One")
    unknown = [make_order(carol, state="unknown", provider=provider, charge=D("1.30000")) for _ in range(10)]
    ServiceFactory(name="Likes held", held_price=D("2.000000"), held_cost=D("1.500000"))
    support_services.ticket_open(user=carol, subject="Where is my order?", kind="other", body="It has been a day.")

    staff = _log_in(visitors, boss)
    staff.go("/admin/")
    page = staff.page
    assert REFERENCE in page.locator("#attention-transfers").inner_text()
    assert (
        _count(page, "transfers"),
        _count(page, "unknown"),
        _count(page, "held_prices"),
        _count(page, "tickets"),
    ) == (
        "1",
        "10",
        "1",
        "1",
    )
    _shoot_desktop(staff, "staff-work-queue")

    # the transfer: approved right on the dashboard
    page.locator(f"#transfer-{transfer.pk} .dash-approve").click()
    page.wait_for_load_state()
    assert _count(page, "transfers") == "0"
    assert wallet_balance(user=carol) == D("120")

    # ten unknown orders: the provider never placed them, refunded in one go
    page.locator("#attention-unknown a").click()
    page.wait_for_load_state()
    _run_action(page, "resolve_unknown_bulk")
    page.check("input[name=resolution][value=cancel]")
    page.fill("[name=reason]", "Provider says none of these reached them")
    page.get_by_role("button", name="Yes, I’m sure").click()
    page.wait_for_load_state()
    assert not Order.objects.filter(pk__in=[o.pk for o in unknown], state="unknown").exists()

    # the held price: approved from the filtered services list
    staff.go("/admin/")
    page.locator("#attention-held_prices a").click()
    page.wait_for_load_state()
    _run_action(page, "approve_held")

    # the ticket: closed from the tickets list
    staff.go("/admin/")
    page.locator("#attention-tickets a").click()
    page.wait_for_load_state()
    _run_action(page, "close_selected")
    assert not Ticket.objects.filter(status="open").exists()

    staff.go("/admin/")
    for key in ("transfers", "unknown", "held_prices", "tickets"):
        assert _count(page, key) == "0", key
    _shoot_desktop(staff, "staff-work-queue-cleared")
    assert not staff.errors


def test_admin_lists_fit_1280_px(visitors: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    carol = _person("carol-with-a-rather-long-username")
    boss = _person("boss", is_staff=True, is_superuser=True)
    provider = ProviderFactory(name="Upstream provider with a long name", balance=D("1234.56"))
    service = ServiceFactory(name="Instagram Followers [Real, 30 days refill, 50K/day, instant start] " * 2)
    for n in range(5):
        make_order(carol, service=service, provider=provider, state="sent", status="Partial", quantity=10000, remains=n)
        Payment.objects.create(
            user=carol, gateway="manual", amount=D("120"), currency="USD", status="pending", external_ref=REFERENCE
        )
    staff = _log_in(visitors, boss)
    for name, path in (
        ("orders", "/admin/orders/order/"),
        ("payments", "/admin/wallets/payment/"),
        ("services", "/admin/catalog/service/"),
        ("providers", "/admin/providers/provider/"),
        ("customer", f"/admin/accounts/user/{carol.pk}/customer/"),
    ):
        staff.go(path)
        # The page, and the list's own scrolling box (Django wraps the table in one).
        overflow = staff.page.evaluate(
            """() => Math.max(document.documentElement.scrollWidth - window.innerWidth,
                ...[...document.querySelectorAll('#changelist .results, #customer-page table')].map(
                    (el) => el.scrollWidth - el.clientWidth))"""
        )
        _shoot_desktop(staff, f"admin-list-{name}")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px"
    staff.go("/admin/wallets/payment/")
    reference = staff.page.locator("td.field-reference span").first
    assert reference.get_attribute("title") == REFERENCE
    headers = staff.page.locator("#result_list thead").inner_text().lower()
    assert "status" in headers and "reference" in headers
    staff.go("/admin/orders/order/")
    headers = staff.page.locator("#result_list thead").inner_text().lower()
    assert all(word in headers for word in ("charge", "quantity", "remains"))
    staff.go("/admin/catalog/service/")
    assert "cost" in staff.page.locator("#result_list thead").inner_text().lower()
    staff.go("/admin/providers/provider/")
    assert "balance" in staff.page.locator("#result_list thead").inner_text().lower()
    assert not staff.errors


def test_log_in_as_shows_the_customers_pages_and_cannot_change_password_or_key(visitors: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    carol = _person("carol")
    boss = _person("boss", is_staff=True, is_superuser=True)
    api_key_issue(user=carol)
    digest = ApiKey.objects.get(user=carol).digest
    make_order(carol, state="sent", status="In progress")

    staff = _log_in(visitors, boss)
    page = staff.page
    staff.go(f"/admin/accounts/user/{carol.pk}/change/")
    page.locator("#customer-page-link").click()
    page.wait_for_load_state()
    assert "carol" in page.locator("#customer-page").inner_text()
    page.locator("#impersonate").click()
    page.wait_for_load_state()
    assert page.locator("#impersonation-banner").is_visible()
    staff.go("/orders/")
    assert page.locator("#impersonation-banner").is_visible()
    assert page.locator("#username").inner_text().strip() == "carol"
    staff.shoot("impersonating-orders")

    for path in ("/accounts/password/change/", "/accounts/email/"):
        response = staff.go(path)
        assert response.status == 403, path
    staff.go("/api/")
    issue = page.locator("form[action='/api/key/issue/'] button")
    if issue.count():
        issue.first.click()
        page.wait_for_load_state()
        assert "Not while you are logged in as a customer" in page.content()
    assert ApiKey.objects.get(user=carol).digest == digest

    page.locator("#impersonation-return").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/admin/accounts/user/{carol.pk}/customer/")
    record = Impersonation.objects.get()
    assert record.staff == boss and record.customer == carol and record.ended_how == "returned"
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)
    assert not staff.errors
