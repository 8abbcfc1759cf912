"""Languages in a real browser: the header's switcher, the choice remembered across logins
and devices, amounts that do not depend on the language, and no untranslated text.

The checks for untranslated text are marked `translations`: they fail until every
customer template marks its texts and the translators fill in the catalogues.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.utils.translation import to_locale

from accounts.models import User
from orders.models import Order
from tests import po
from tests.e2e import i18n_check
from tests.factories import PASSWORD, CategoryFactory, RouteFactory, ServiceFactory, UserFactory
from wallets.selectors import wallet_balance
from wallets.services import wallet_credit

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [code for code, _name in django_settings.LANGUAGES if code != "en"]
# Data without letters, so that the checks see only the panel's own texts.
USERNAME = "1001"
EMAIL = "1001@example.com"
CUSTOMER_PAGES = ["/orders/new/", "/orders/", "/services/", "/wallet/", "/account/", "/tickets/"]


@pytest.fixture
def shop(db: Any) -> dict[str, Any]:
    customer: Any = UserFactory(username=USERNAME, email=EMAIL)
    EmailAddress.objects.create(user=customer, email=EMAIL, verified=True, primary=True)
    wallet_credit(user=customer, amount=Decimal("100"), kind="deposit", idempotency_key=f"test:{uuid4().hex}")
    service = RouteFactory(
        service=ServiceFactory(
            category=CategoryFactory(name="7"), name="1000 - 24", min_quantity=10, price=Decimal("1.300000")
        )
    ).service
    return {"customer": customer, "service": service}


def _filled_catalogue(folder: Path, language: str) -> dict[str, str]:
    """The committed catalogue of `language`, its missing entries filled with a marked stand-in
    so that the page visibly changes before the translators are done; compiled for the test."""
    entries = []
    table = {}
    for entry in po.messages(ROOT / "locale" / to_locale(language) / "LC_MESSAGES" / "django.po"):
        if not entry.msgstr and entry.msgid_plural is None:
            entry.msgstr = f"«{language}» {entry.msgid}"
        if entry.msgid_plural is not None and not all(entry.plurals.values()):
            entry.plurals = {0: f"«{language}» {entry.msgid}", 1: f"«{language}» {entry.msgid_plural}"}
        entries.append(entry)
        table[entry.msgid] = entry.msgstr
    po.compile_catalogue(folder, to_locale(language), entries)
    return table


def log_in(v: Any, username: str = USERNAME) -> None:
    v.go("/accounts/login/")
    v.page.fill("[name=login]", username)
    v.page.fill("[name=password]", PASSWORD)
    v.page.locator("main form button[type=submit]").first.click()
    v.page.wait_for_url(re.compile(r"^(?!.*/accounts/login/).*$"))


def log_out(v: Any) -> None:
    v.page.locator("header form[action*=logout] button").click()
    v.page.wait_for_load_state()


def nav_labels(v: Any) -> list[str]:
    return [text.strip() for text in v.page.locator("#mainnav a").all_inner_texts()]


def switch_language(v: Any, code: str) -> None:
    v.page.locator("header [data-language-switcher] summary").click()
    with v.page.expect_navigation():
        v.page.locator(f"header [data-language-switcher] button[value='{code}']").click()


def current_language(v: Any) -> str:
    return str(v.page.locator("header [data-language-switcher]").get_attribute("data-current-language"))


def test_the_header_switcher_changes_the_page_and_the_account_keeps_the_choice(
    visitors: Any, shop: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    russian = _filled_catalogue(tmp_path, "ru")
    settings.LOCALE_PATHS = [tmp_path]
    alice = visitors("alice")
    # A visitor switches too (no account yet): the cookie keeps it.
    alice.go("/")
    switch_language(alice, "es")
    assert current_language(alice) == "es"
    switch_language(alice, "en")

    log_in(alice)
    alice.go("/orders/")
    assert "Orders" in nav_labels(alice)
    switch_language(alice, "ru")
    assert alice.page.url.endswith("/orders/")
    assert russian["Orders"] in nav_labels(alice) and "Orders" not in nav_labels(alice)
    assert User.objects.get(pk=shop["customer"].pk).language == "ru"
    alice.shoot("language-ru-orders")
    alice.page.locator("header [data-language-switcher] summary").click()
    alice.shoot("language-menu-open")
    alice.page.keyboard.press("Escape")

    # Logged out and in again, and on another device (a browser with no cookie): Russian.
    log_out(alice)
    log_in(alice)
    alice.go("/orders/")
    assert russian["Orders"] in nav_labels(alice)
    other_device = visitors("alice-phone")
    other_device.go("/")
    assert current_language(other_device) == "en"
    log_in(other_device)
    other_device.go("/orders/")
    assert russian["Orders"] in nav_labels(other_device)
    assert current_language(other_device) == "ru"
    assert not alice.errors and not other_device.errors


def test_the_switcher_works_without_javascript(chromium: Any, live_server: Any, shop: dict[str, Any]) -> None:
    context = chromium.new_context(java_script_enabled=False, base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto("/services/")
        page.locator("header [data-language-switcher] summary").click()
        with page.expect_navigation():
            page.locator("header [data-language-switcher] button[value='tr']").click()
        assert page.url.endswith("/services/")
        assert page.locator("header [data-language-switcher]").get_attribute("data-current-language") == "tr"
    finally:
        context.close()


def place_order(v: Any, service: Any, quantity: str, link: str) -> Order:
    v.go("/orders/new/")
    v.page.select_option("#id_service", str(service.pk))
    v.page.fill("[name=link]", link)
    v.page.fill("[name=quantity]", quantity)
    v.page.locator("#new-order-form button[type=submit]").click()
    v.page.wait_for_load_state()
    assert re.search(r"/orders/\d+/$", v.page.url), v.page.locator("main").inner_text()[:800]
    return Order.objects.get(pk=int(v.page.url.rstrip("/").rsplit("/", 1)[1]))


def test_amounts_charged_do_not_depend_on_the_language(
    visitors: Any, shop: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    _filled_catalogue(tmp_path, "ru")
    settings.LOCALE_PATHS = [tmp_path]
    customer, service = shop["customer"], shop["service"]
    bob = visitors("bob")
    log_in(bob)
    english = place_order(bob, service, "1500", "https://example.com/p/1")
    switch_language(bob, "ru")
    russian = place_order(bob, service, "1500", "https://example.com/p/2")
    assert russian.charge == english.charge == Decimal("1.95000")
    assert wallet_balance(user=customer) == Decimal("100") - 2 * english.charge
    # What the order page shows as charged is the same stored number in both languages.
    charged = bob.page.locator("#order-charge [data-amount]")
    amounts = {charged.first.get_attribute("data-amount")} if charged.count() else set()
    assert amounts <= {str(russian.charge)}


@pytest.mark.translations
def test_pages_show_only_marked_text_in_the_pseudo_language(
    visitors: Any, shop: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """Every visible text of every page the check reaches is marked for translation."""
    code = i18n_check.pseudo_language(tmp_path, settings)
    from siteconf.selectors import site_settings

    conf = site_settings()
    allowed = [conf.panel_name, conf.base_currency, USERNAME, EMAIL, "UTC", "Pseudo"]
    v = visitors("pseudo")
    failures: dict[str, list[str]] = {}

    v.go("/")
    v.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": code, "url": v.page.url}])
    # The check itself: an unmarked text is found, one inside data-i18n-skip is not.
    v.go("/")
    v.page.evaluate(
        """() => {
          const probe = document.createElement("p"); probe.textContent = "Never marked"; document.body.append(probe);
          const data = document.createElement("p"); data.dataset.i18nSkip = ""; data.textContent = "Customer data";
          document.body.append(data);
        }"""
    )
    found = i18n_check.unmarked_texts(v.page, allowed=allowed)
    assert "Never marked" in found and "Customer data" not in found

    # Every page is checked below (test_every_page_shows_only_marked_text_...); here the pages
    # a customer reaches by logging in through the form.
    log_in(v)
    assert User.objects.get(pk=shop["customer"].pk).language in ("", code)
    for path in CUSTOMER_PAGES:
        v.go(path)
        failures.update({path: texts} if (texts := i18n_check.unmarked_texts(v.page, allowed=allowed)) else {})
    report = "\n".join(f"  {path}: {texts[:12]}" for path, texts in failures.items())
    assert not failures, f"texts never marked for translation:\n{report}"


# Every page of tests/e2e/pages.py, at a phone's width, in the pseudo-language and in each
# shipped language; and no sideways scrolling in Russian (the longest words) at 360 px.
def _every_page_contexts(chromium: Any, live_server: Any, seeded: Any, language: str, width: int) -> dict[bool, Any]:
    from tests.e2e.test_every_page import _session_cookie

    contexts = {}
    for logged_in in (False, True):
        context = chromium.new_context(viewport={"width": width, "height": 800}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        cookies = [{"name": django_settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
        if logged_in:
            cookies.append(_session_cookie(seeded.customer, live_server.url))
        context.add_cookies(cookies)
        contexts[logged_in] = context
    return contexts


# The real languages visit a representative set (every page in all four takes too long).
REPRESENTATIVE = (
    "home-public",
    "login",
    "new-order",
    "orders",
    "order-canceled",
    "order-subscription",
    "services",
    "add-funds",
    "api",
    "ticket",
    "account",
)


def _visit_every_page(
    chromium: Any,
    live_server: Any,
    language: str,
    width: int,
    check: Any,
    only: tuple[str, ...] = (),
    seeded: Any = None,
) -> dict[str, Any]:
    from tests.e2e.pages import PAGES, seed

    seeded = seeded or seed()
    seeded.customer.language = language
    seeded.customer.save()
    contexts = _every_page_contexts(chromium, live_server, seeded, language, width)
    failures: dict[str, Any] = {}
    try:
        for page_spec in PAGES:
            if only and page_spec.name not in only:
                continue
            page = contexts[page_spec.logged_in].new_page()
            page.goto(page_spec.url(seeded))
            page.wait_for_load_state("load")
            assert page.get_attribute("html", "lang") == language, page_spec.name
            if found := check(page):
                failures[page_spec.name] = found
            page.close()
    finally:
        for context in contexts.values():
            context.close()
    return failures


@pytest.mark.translations
def test_every_page_shows_only_marked_text_in_the_pseudo_language(
    chromium: Any, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    code = i18n_check.pseudo_language(tmp_path, settings)
    from siteconf.selectors import site_settings

    conf = site_settings()
    allowed = [conf.panel_name, conf.base_currency, "maria", "maria@example.com", "UTC", "Pseudo"]
    failures = _visit_every_page(
        chromium, live_server, code, 390, lambda page: i18n_check.unmarked_texts(page, allowed=allowed)
    )
    report = "\n".join(f"  {name}: {texts[:12]}" for name, texts in failures.items())
    assert not failures, f"texts never marked for translation:\n{report}"


@pytest.mark.translations
@pytest.mark.parametrize("language", SHIPPED)
def test_pages_show_no_english_text_in_the_shipped_languages(chromium: Any, live_server: Any, language: str) -> None:
    """A representative set of pages in each shipped language (one test each, so that parallel
    runs share them out)."""
    failures = _visit_every_page(
        chromium,
        live_server,
        language,
        390,
        lambda page: i18n_check.english_texts(page, language),
        REPRESENTATIVE,
    )
    report = "\n".join(f"  {language} {name}: {texts[:12]}" for name, texts in failures.items())
    assert not failures, f"English text on pages in {language}:\n{report}"


def test_no_page_scrolls_sideways_in_russian_at_360_px(chromium: Any, live_server: Any) -> None:
    from tests.e2e.test_every_page import OVERFLOW_JS

    failures = _visit_every_page(chromium, live_server, "ru", 360, lambda page: page.evaluate(OVERFLOW_JS))
    report = "\n".join(f"  {name}: {found}" for name, found in failures.items())
    assert not failures, f"pages wider than 360 px in Russian:\n{report}"
