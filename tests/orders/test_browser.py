"""The new-order page in a real browser: the static script (no inline scripts under the
CSP) picks services, shows the fields of their type and previews the exact charge."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from tests.orders.factories import fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
XSS = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("needs Debian's chromium")  # the e2e marker makes this a failure in CI
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread while the browser lives; the
    # ORM calls (the test's and the database flush after it) stay synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    profile = tempfile.mkdtemp(prefix="orders-chromium-")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--crash-dumps-dir={profile}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium: Any, live_server: Any, customer: Any) -> Iterator[Any]:
    client = Client()
    client.force_login(customer)
    context = chromium.new_context(base_url=live_server.url)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def console(message: Any) -> None:
        # The layout has no favicon; anything else (a CSP refusal, a script error) counts.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(message.text)

    page.on("console", console)
    page.problems = problems
    yield page
    context.close()


def visible(page: Any, field: str) -> bool:
    return page.locator(f'.order-field[data-field="{field}"]').is_visible()


def test_new_order_page_picks_shows_fields_previews_and_places(page, customer, shop, queue):
    fund(customer, "100")
    default = shop.service(name="Followers " + XSS, price="1.300000", dripfeed=True, description=XSS)
    comments = shop.service(type="Custom Comments", name="Comments", price="2.500000", min=1)
    subscription = shop.service(type="Subscriptions", name="Auto likes", price="1.000000", min=10, max=1000)
    package = shop.service(type="Package", name="Starter package", price="18.876000", min=1, max=1)

    page.goto("/orders/new/")
    page.select_option("#id_service", str(default.pk))
    assert page.text_content("#info-name") == "Followers " + XSS  # shown as text, never as markup
    assert visible(page, "link") and visible(page, "quantity") and not visible(page, "comments")
    page.fill("#id_link", "https://instagram.com/p/1")
    page.fill("#id_quantity", "1000")
    assert page.text_content("#charge-preview") == "1.30 USD"
    page.check("#id_dripfeed")
    page.fill("#id_runs", "3")
    page.fill("#id_interval", "10")
    assert page.text_content("#charge-preview") == "3.90 USD"

    page.select_option("#id_service", str(comments.pk))
    assert visible(page, "comments") and not visible(page, "quantity")
    assert not page.locator("#dripfeed-block").is_visible()
    page.fill("#id_comments", "great\nnice\nwow")
    assert page.text_content("#charge-preview") == "0.0075 USD"

    page.select_option("#id_service", str(subscription.pk))
    assert not visible(page, "link") and visible(page, "username") and visible(page, "delay")
    assert "per 1000 per post" in page.text_content("#info-rate")
    # A subscription holds max × posts (100 posts when none are named) at the rate per 1000.
    page.fill("#id_max", "500")
    assert page.text_content("#charge-preview") == "50.00 USD"
    page.fill("#id_posts", "20")
    assert page.text_content("#charge-preview") == "10.00 USD"

    page.select_option("#id_service", str(package.pk))
    assert "per package" in page.text_content("#info-rate")
    assert page.text_content("#charge-preview") == "18.88 USD"

    page.fill("#service-search", "comm")
    options = page.locator("#id_service option").all_text_contents()
    assert any("Comments" in o for o in options) and not any("Followers" in o for o in options)
    page.fill("#service-search", "")

    page.select_option("#id_service", str(default.pk))
    page.click("#new-order-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/orders/\d+/$"))
    assert "placed: 3.90 USD charged." in page.text_content("main")
    order = Order.objects.get(user=customer)
    assert (order.quantity, order.runs, str(order.charge)) == (3000, 3, "3.90000")
    assert page.evaluate("() => window.__pwned") is None
    assert page.problems == []
