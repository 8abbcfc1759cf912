"""The panel in a real browser: a visitor becomes a customer, tops up, orders, sees the orders
complete, asks for a refill, opens a ticket and gets an answer; another customer sees none
of it; hostile text from a provider never runs.

Real pieces: Debian's chromium, the live server, a Celery worker on Redis, PostgreSQL and
the provider simulator. Screenshots of the main pages land in tests/e2e/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail

from accounts.models import User
from orders.models import Order, Refill, State, Status
from orders.tasks import orders_sync_dispatch_task
from support.models import Ticket
from tests.factories import PASSWORD, CategoryFactory, UserFactory
from tests.orders.factories import Shop
from wallets.models import Payment

try:  # the orders engineer's real Celery worker (threads, in this process, on the broker)
    from tests.orders.conftest import worker
except ImportError:
    from tests.orders.test_worker import worker  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Followers<script>window.__pwned=1</script>'
HOSTILE_TEXT = "<script>window.__pwned=1</script><svg onload=window.__pwned=1>"


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


@pytest.fixture
def panel(settings: Any, simulator: Any, site_conf: Any) -> dict[str, Any]:
    site_conf(email_verification="mandatory")
    settings.STAFF_REQUIRE_MFA = True
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    settings.ORDERS_SYNC_MIN_INTERVAL_SECONDS = 0
    shop = Shop(simulator=simulator)
    instagram = CategoryFactory(name="Instagram")
    default = shop.service(
        name="Instagram Followers [Refill 30D]",
        category=instagram,
        type="Default",
        min=10,
        max=5000,
        price="2.000000",
        refill=True,
        description="Real-looking followers, start 0-1 h.",
    )
    comments = shop.service(
        name="Instagram Custom Comments", category=instagram, type="Custom Comments", min=1, max=100, price="10.000000"
    )
    hostile = shop.service(
        name=HOSTILE_NAME, category=CategoryFactory(name=HOSTILE_TEXT), description=HOSTILE_TEXT, price="1.000000"
    )
    staff = UserFactory(username="boss", email="boss@example.com", is_staff=True, is_superuser=True)
    EmailAddress.objects.create(user=staff, email=staff.email, primary=True, verified=True)
    secret = generate_totp_secret()
    TOTP.activate(staff, secret)
    return {
        "simulator": simulator,
        "default": default,
        "comments": comments,
        "hostile": hostile,
        "staff": staff,
        "secret": secret,
    }


def sign_up(v: Any, *, email: str, username: str) -> None:
    v.go("/")
    v.shoot("landing")
    v.page.get_by_role("link", name="Create a free account").click()
    v.page.fill("[name=email]", email)
    v.page.fill("[name=username]", username)
    v.page.fill("[name=password1]", PASSWORD)
    v.page.fill("[name=password2]", PASSWORD)
    v.shoot("signup")
    v.page.get_by_role("button", name="Sign Up").click()
    v.page.wait_for_url("**/accounts/confirm-email/")
    assert "Verify Your Email Address" in v.page.content()


def verify_email(v: Any, *, email: str) -> None:
    [message] = [m for m in mail.outbox if email in m.to]
    # The link names PANEL_BASE_URL; the browser follows its path on the test server.
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", message.body)
    assert link, message.body
    v.go(link.group(1))
    v.page.get_by_role("button", name="Confirm").click()
    # Confirming logs the customer in and the home page is their new-order page.
    v.page.wait_for_url("**/orders/new/")


def staff_login(v: Any, panel: dict[str, Any]) -> None:
    v.go("/admin/")
    v.page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")
    v.page.fill("[name=login]", "boss")
    v.page.fill("[name=password]", PASSWORD)
    v.page.get_by_role("button", name="Sign In").click()
    v.page.wait_for_url("**/accounts/2fa/authenticate/")
    v.page.fill("[name=code]", totp_code(panel["secret"]))
    v.page.get_by_role("button", name="Sign In").click()
    v.page.wait_for_url("**/admin/")
    assert v.page.locator("#needs-attention").is_visible()


def place_order(v: Any, service: Any, shoot: str = "", **fields: str) -> Order:
    v.go("/orders/new/")
    v.page.select_option("#id_service", str(service.pk))
    for name, value in fields.items():
        v.page.fill(f"[name={name}]", value)
    if shoot:
        v.shoot(shoot)
    v.page.get_by_role("button", name="Place order").click()
    v.page.wait_for_url(re.compile(r".*/orders/\d+/$"))
    assert "placed" in v.page.locator(".alert-success").inner_text()
    return Order.objects.get(pk=int(v.page.url.rstrip("/").rsplit("/", 1)[1]))


def test_a_visitor_becomes_a_customer_and_gets_served(visitors: Any, panel: dict[str, Any], worker: Any) -> None:
    alice = visitors("alice")

    # 1. Sign up and verify the e-mail address from the outbox.
    sign_up(alice, email="alice@example.com", username="alice")
    verify_email(alice, email="alice@example.com")
    customer = User.objects.get(username="alice")
    assert EmailAddress.objects.get(user=customer).verified
    assert alice.page.locator("#balance").inner_text().split()[-2:] == ["0.00", "USD"]

    # 2. Report a manual transfer; staff approve it in the admin (with their second factor).
    alice.go("/wallet/")
    alice.page.fill("#manual-amount", "50")
    alice.page.fill("#manual-reference", "BANK-REF-1")
    alice.page.get_by_role("button", name="Report transfer").click()
    alice.page.wait_for_load_state()
    payment = Payment.objects.get(user=customer)
    assert payment.status == Payment.Status.PENDING
    alice.shoot("add-funds")

    boss = visitors("boss")
    staff_login(boss, panel)
    boss.go("/admin/wallets/payment/")
    boss.page.check(f"input[name=_selected_action][value='{payment.pk}']")
    boss.page.select_option("select[name=action]", "approve_selected")
    boss.page.click("button[name=index]")
    boss.page.wait_for_load_state()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID

    alice.go("/")
    assert "50.00 USD" in alice.page.locator("#balance").inner_text()

    # 3. Order a Default and a Custom Comments service.
    followers = place_order(
        alice, panel["default"], shoot="new-order", link="https://instagram.com/alice", quantity="1000"
    )
    comments = place_order(
        alice, panel["comments"], link="https://instagram.com/p/alice1", comments="Nice!\nGreat\nWow"
    )
    assert (followers.charge, comments.charge) == (Decimal("2.00000"), Decimal("0.03000"))
    wait_for(
        "both orders sent upstream",
        lambda: (
            set(Order.objects.filter(pk__in=[followers.pk, comments.pk]).values_list("state", flat=True))
            == {State.SENT}
        ),
    )

    # 4. The provider delivers; status sync (on the worker) completes them; the customer sees it.
    panel["simulator"].advance_all()
    orders_sync_dispatch_task.delay()
    wait_for(
        "both orders completed",
        lambda: (
            set(Order.objects.filter(pk__in=[followers.pk, comments.pk]).values_list("status", flat=True))
            == {Status.COMPLETED}
        ),
    )
    alice.go("/orders/")
    table = alice.page.locator("main").inner_text()
    assert table.count("Completed") >= 2
    alice.shoot("orders")

    # 5. Refill the followers.
    alice.go(f"/orders/{followers.pk}/")
    alice.page.click("button[data-action=refill]")
    alice.page.wait_for_load_state()
    assert f"Refill requested for order #{followers.pk}" in alice.page.content()
    assert Refill.objects.filter(order=followers).count() == 1
    alice.go("/orders/refills/")
    refills = alice.page.locator("main").inner_text()
    assert "Instagram Followers [Refill 30D]" in refills and "instagram.com/alice" in refills

    # 6. Open a ticket about the comments order and get an answer by e-mail and on the site.
    alice.go("/tickets/")
    assert "You have no tickets yet" in alice.page.content()
    alice.page.click("#new-ticket")
    alice.page.fill("[name=subject]", "Speed up my comments")
    alice.page.select_option("[name=kind]", "order")
    alice.page.select_option("[name=order_action]", "speed_up")
    alice.page.fill("[name=order_ids]", str(comments.pk))
    alice.page.fill("[name=message]", "Could they arrive faster?")
    alice.page.get_by_role("button", name="Send ticket").click()
    alice.page.wait_for_url(re.compile(r".*/tickets/\d+/$"))
    ticket = Ticket.objects.get(user=customer)
    assert ticket.status == "open"

    mail.outbox.clear()
    boss.go(f"/admin/support/ticket/{ticket.pk}/change/")
    assert "Could they arrive faster?" in boss.page.content()
    boss.page.fill("[name=reply]", "Done: they are on the fast lane now.")
    boss.page.click("input[name=_continue]")
    boss.page.wait_for_load_state()
    ticket.refresh_from_db()
    assert ticket.status == "answered"
    [notice] = mail.outbox
    assert notice.to == ["alice@example.com"] and "fast lane" in notice.body

    alice.go(f"/tickets/{ticket.pk}/")
    assert "fast lane" in alice.page.locator("#thread").inner_text()
    assert "Answered" in alice.page.locator("#ticket-status").inner_text()
    alice.shoot("ticket")
    alice.go("/account/")
    alice.shoot("account")
    boss.go("/admin/")
    boss.shoot("admin-dashboard")

    # 7. A second customer sees none of it.
    bob_user = UserFactory(username="bob", email="bob@example.com")
    EmailAddress.objects.create(user=bob_user, email=bob_user.email, primary=True, verified=True)
    bob = visitors("bob")
    bob.go("/accounts/login/")
    bob.page.fill("[name=login]", "bob")
    bob.page.fill("[name=password]", PASSWORD)
    bob.page.get_by_role("button", name="Sign In").click()
    bob.page.wait_for_url("**/orders/new/")
    for path in (f"/orders/{followers.pk}/", f"/orders/{comments.pk}/", f"/tickets/{ticket.pk}/"):
        assert bob.go(path).status == 404, path
    bob.go("/orders/")
    assert "instagram.com/alice" not in bob.page.content()
    bob.go("/tickets/")
    assert "Speed up my comments" not in bob.page.content()

    # 8. Hostile text from the provider never runs: services page, order picker, admin.
    for who, path in (
        (alice, "/services/"),
        (alice, f"/orders/new/?service={panel['hostile'].pk}"),
        (boss, "/admin/catalog/service/"),
    ):
        who.go(path)
        who.page.wait_for_load_state("networkidle")
        if path == "/services/":
            who.shoot("services")
        assert who.flag() is None, path
        assert who.page.locator("img[src='x']").count() == 0, path
    alice.page.select_option("#id_service", str(panel["hostile"].pk))
    alice.page.wait_for_timeout(200)
    assert alice.flag() is None
    assert alice.page.locator("img[src='x']").count() == 0
    assert not alice.errors and not boss.errors and not bob.errors
