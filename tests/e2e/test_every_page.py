"""Every customer page at 360, 390 and 1280 px: no sideways scrolling, no server error, no
console error.

Visitors' pages are opened logged out, the rest as a customer with orders, payments and a
ticket (tests/e2e/pages.py). With PANEL_SCREENSHOTS=<folder> set, each page is also
photographed at 390 and 1280 px into that folder (PANEL_SCREENSHOTS_ALL=1 for every page,
else only pages.KEY_PAGES): `make screenshots` writes docs/screenshots/ that way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.e2e.pages import KEY_PAGES, PAGES, seed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = (360, 390, 1280)
SCREENSHOT_WIDTHS = {390: "phone", 1280: "desktop"}

# The page scrolling sideways, a box that scrolls sideways (a table in an overflow wrapper
# is a hidden sideways scroll on a phone; only code blocks may scroll), and elements
# sticking out of the viewport unless a clipping ancestor that fits holds them.
OVERFLOW_JS = """
() => {
  const width = window.innerWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`document is ${document.documentElement.scrollWidth}px wide`);
  }
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      // Only a box that scrolls may hold wider content (and it is reported above); content
      // cut off by overflow: hidden is as lost to the reader as content off the screen.
      if (style.overflowX === 'auto' || style.overflowX === 'scroll') {
        const box = up.getBoundingClientRect();
        if (box.left >= -1 && box.right <= width + 1) return true;
      }
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || style.position === 'fixed') continue;
    if (el.closest('.offcanvas-lg:not(.show), .visually-hidden, .visually-hidden-focusable, .modal')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const name = () => {
      const id = el.id ? '#' + el.id : '';
      const cls = el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
      return `${el.tagName.toLowerCase()}${id}${cls}`;
    };
    const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
    if (scrolls && el.scrollWidth > el.clientWidth + 1 && !['PRE', 'TEXTAREA'].includes(el.tagName)) {
      found.push(`${name()} scrolls sideways (${el.scrollWidth}px in ${el.clientWidth}px)`);
      if (found.length > 5) break;
      continue;
    }
    if ((box.right > width + 1 || box.left < -1) && !clipped(el)) {
      found.push(`${name()} spans ${Math.round(box.left)}..${Math.round(box.right)}px`);
      if (found.length > 5) break;
    }
  }
  return found;
}
"""


def _session_cookie(customer: Any, base_url: str) -> dict[str, Any]:
    client = Client()
    client.force_login(customer)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": base_url,
    }


def _screenshot_dir() -> Path | None:
    folder = os.environ.get("PANEL_SCREENSHOTS")
    return Path(folder) if folder else None


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_without_errors(chromium: Any, live_server: Any, width: int) -> None:
    seeded = seed()
    shots = _screenshot_dir() if width in SCREENSHOT_WIDTHS else None
    every = os.environ.get("PANEL_SCREENSHOTS_ALL") == "1"
    problems: list[str] = []
    contexts = {}
    for logged_in in (False, True):
        context = chromium.new_context(viewport={"width": width, "height": 800}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        if logged_in:
            context.add_cookies([_session_cookie(seeded.customer, live_server.url)])
        contexts[logged_in] = context
    try:
        for page_spec in PAGES:
            page = contexts[page_spec.logged_in].new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(f"script error: {exc}"))
            page.on(
                "console",
                lambda msg, errors=errors: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )
            url = page_spec.url(seeded)
            response = page.goto(url)
            page.wait_for_load_state("load")
            where = f"{page_spec.name} ({url}) at {width}px"
            if response is None or response.status != page_spec.status:
                problems.append(f"{where}: HTTP {response.status if response else 'none'}")
            if page_spec.status != 200:
                # The browser itself logs the 404 of the document as a console error.
                errors = [e for e in errors if "status of 404" not in e]
            problems.extend(f"{where}: {error}" for error in errors)
            problems.extend(f"{where}: {found}" for found in page.evaluate(OVERFLOW_JS))
            if shots is not None and (every or page_spec.name in KEY_PAGES):
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / f"{page_spec.name}-{SCREENSHOT_WIDTHS[width]}.png"), full_page=True)
            page.close()
    finally:
        for context in contexts.values():
            context.close()
    assert not problems, "\n".join(problems)


def test_new_order_page_warns_before_an_order_the_balance_cannot_pay(chromium: Any, live_server: Any) -> None:
    seeded = seed()
    context = chromium.new_context(viewport={"width": 390, "height": 800}, base_url=live_server.url)
    context.add_cookies([_session_cookie(seeded.customer, live_server.url)])
    page = context.new_page()
    try:
        likes = seeded.services["likes"]
        page.goto(f"/orders/new/?service={likes.pk}")
        # A valid default (the minimum) and its charge by the display rule.
        assert page.input_value("#id_quantity") == str(likes.min_quantity)
        assert page.text_content("#charge-preview") == "0.0027 USD"
        assert not page.locator("#funds-warning").is_visible()
        page.fill("#id_quantity", "100000")  # 5.33 USD: within the 59.08 balance
        assert page.text_content("#charge-preview") == "5.33 USD"
        assert not page.locator("#funds-warning").is_visible()
        page.select_option("#id_service", str(seeded.services["youtube"].pk))
        page.fill("#id_quantity", "10000")  # 355.00 USD
        assert page.text_content("#charge-preview") == "355.00 USD"
        assert page.locator("#funds-warning").is_visible()
        assert page.get_attribute("#funds-warning a", "href") == "/wallet/"
        # Light or dark, remembered across pages.
        before = page.get_attribute("html", "data-bs-theme")
        page.click("[data-theme-toggle]")
        after = page.get_attribute("html", "data-bs-theme")
        assert {before, after} == {"light", "dark"}
        page.goto("/orders/")
        assert page.get_attribute("html", "data-bs-theme") == after
        if after == "light":
            page.click("[data-theme-toggle]")
        # The dark theme is dark: the page's background, not only an attribute.
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 18, 32)", background
        shots = _screenshot_dir()
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "orders-dark-phone.png"), full_page=True)
    finally:
        context.close()
