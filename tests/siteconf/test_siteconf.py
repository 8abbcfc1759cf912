"""The panel configuration: each setting takes effect where it is used, without a restart;
the cache is shared by every process; the history records who changed what; the base currency
is fixed once money moved; only the Owner may change it."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.signals import request_started
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import User
from panel.money_display import base_currency
from siteconf.models import SiteSettings
from siteconf.selectors import CACHE_KEY, site_settings, site_settings_forget_local
from siteconf.services import SiteSettingsError, site_settings_update
from tests.factories import PASSWORD, UserFactory
from tests.wallets.factories import fund
from wallets import conf as wallet_conf
from wallets.models import GatewaySetting

ROOT = Path(__file__).resolve().parents[2]
CHANGE_URL = "/admin/siteconf/sitesettings/1/change/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def _staff(role: str | None, name: str) -> User:
    user = UserFactory(username=name, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def _admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(**changes: Any) -> dict[str, Any]:
    """The change form as the admin posts it, current values with `changes` on top."""
    row = SiteSettings.objects.get(pk=1)
    data = {
        "panel_name": row.panel_name,
        "support_email": row.support_email,
        "terms_url": row.terms_url,
        "privacy_url": row.privacy_url,
        "base_currency": row.base_currency,
        "affiliate_percent": str(row.affiliate_percent),
        "manual_instructions": row.manual_instructions,
        "bank_details": row.bank_details,
        "email_verification": row.email_verification,
    }
    if row.signup_open:
        data["signup_open"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture(autouse=True)
def _no_staff_mfa(settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False


# --- each setting where it is used -------------------------------------------------------------
def test_the_panel_name_shows_on_pages_and_in_the_admin_at_once(client: Client, site_conf: Any) -> None:
    assert "SMM Panel" in client.get("/").content.decode()
    site_conf(panel_name="Boost Shop")
    html = client.get("/").content.decode()
    assert "<title>Boost Shop" in html and "SMM Panel" not in html
    owner = _staff("Owner", "owner")
    assert "Boost Shop · staff" in _admin_client(owner).get("/admin/").content.decode()


def test_the_base_currency_is_what_pages_the_api_and_wallets_use(customer: User, site_conf: Any) -> None:
    site_conf(base_currency="EUR")
    assert base_currency() == "EUR" and wallet_conf.currency() == "EUR"
    from accounts.services import api_key_issue

    key = api_key_issue(user=customer)
    answer = Client().post("/api/v2", {"key": key, "action": "balance"}).json()
    assert answer["currency"] == "EUR"


def test_the_affiliate_percentage_is_what_the_affiliates_page_offers(customer: User, site_conf: Any) -> None:
    site_conf(affiliate_percent=Decimal("12"))
    client = Client()
    client.force_login(customer)
    assert "<strong>12%</strong>" in client.get(reverse("wallets:affiliates")).content.decode()


def test_manual_transfer_instructions_and_bank_details_show_on_the_add_funds_page(
    customer: User, site_conf: Any
) -> None:
    site_conf(manual_instructions="Pay by SEPA transfer.", bank_details="IBAN DE00 1234 <b>5678</b>")
    client = Client()
    client.force_login(customer)
    html = client.get(reverse("wallets:add_funds")).content.decode()
    assert "Pay by SEPA transfer." in html
    assert "IBAN DE00 1234 &lt;b&gt;5678&lt;/b&gt;" in html  # staff text is escaped too


def test_deposit_limits_are_the_gateway_settings(customer: User) -> None:
    from wallets.services import WalletError, payment_start

    GatewaySetting.objects.create(code="manual", min_amount=Decimal("20"))
    with pytest.raises(WalletError, match="minimum deposit is 20"):
        payment_start(user=customer, gateway="manual", amount=Decimal("10"), data={"reference": "r"})


def test_limits_set_in_the_environment_are_copied_into_the_gateway_settings_once(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("wallets.migrations.0005_gateway_limits_from_environment")
    monkeypatch.setenv("WALLET_STRIPE_MIN", "10")
    monkeypatch.setenv("WALLET_STRIPE_MAX", "5000")  # the default: nothing to copy
    monkeypatch.setenv("WALLET_MANUAL_ENABLED", "false")
    migration.copy_limits(apps, None)
    stripe = GatewaySetting.objects.get(code="stripe")
    assert (stripe.min_amount, stripe.max_amount) == (Decimal("10"), None)
    assert GatewaySetting.objects.get(code="manual").enabled is False
    assert not GatewaySetting.objects.filter(code="paypal").exists()


def test_the_initial_values_come_from_the_old_environment(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("siteconf.migrations.0002_initial_values_from_environment")
    SiteSettings.objects.all().delete()
    for name, value in {
        "PANEL_NAME": "Old Panel",
        "PANEL_CURRENCY": "eur",
        "WALLET_AFFILIATE_PERCENT": "7",
        "WALLET_MANUAL_INSTRUCTIONS": "Wire it.",
        "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
    }.items():
        monkeypatch.setenv(name, value)
    migration.create_row(apps, None)
    row = SiteSettings.objects.get(pk=1)
    assert (row.panel_name, row.base_currency, row.affiliate_percent) == ("Old Panel", "EUR", Decimal("7"))
    assert (row.manual_instructions, row.email_verification) == ("Wire it.", "mandatory")


# --- sign-up and e-mail verification through the allauth adapter ---------------------------------
def _signup(client: Client, name: str = "newbie") -> Any:
    return client.post(
        reverse("account_signup"),
        {"email": f"{name}@example.com", "username": name, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_closed_sign_up_says_so_and_refuses_a_posted_form(client: Client, site_conf: Any) -> None:
    site_conf(signup_open=False)
    assert reverse("account_signup") not in client.get("/").content.decode()  # no button leads there
    page = client.get(reverse("account_signup"))
    assert "Sign Up Closed" in page.content.decode() or "sign up closed" in page.content.decode().lower()
    _signup(client)
    assert not User.objects.filter(username="newbie").exists()
    site_conf(signup_open=True)
    assert _signup(client).status_code == 302
    assert User.objects.filter(username="newbie").exists()


def test_verification_none_sends_nothing_and_logs_in(client: Client, site_conf: Any, mailoutbox: Any) -> None:
    site_conf(email_verification="none")
    response = _signup(client)
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert mailoutbox == []


def test_verification_mandatory_keeps_an_unverified_customer_out(
    client: Client, site_conf: Any, mailoutbox: Any
) -> None:
    site_conf(email_verification="mandatory")
    response = _signup(client)
    assert response.status_code == 302 and "_auth_user_id" not in client.session
    assert len(mailoutbox) == 1
    login = client.post(reverse("account_login"), {"login": "newbie", "password": PASSWORD})
    assert "_auth_user_id" not in client.session and login.status_code == 302
    assert "confirm-email" in login["Location"] or "verification" in login["Location"]
    # Optional again: the same customer logs in.
    site_conf(email_verification="optional")
    client.post(reverse("account_login"), {"login": "newbie", "password": PASSWORD})
    assert "_auth_user_id" in client.session


# --- the cache ---------------------------------------------------------------------------------
def test_reads_come_from_the_cache_and_a_save_replaces_them(db: Any, django_assert_num_queries: Any) -> None:
    site_settings()
    site_settings_forget_local()
    with django_assert_num_queries(0):
        assert site_settings().panel_name == "SMM Panel"
    # A row changed behind the service's back is not seen: the page reads the cache...
    SiteSettings.objects.filter(pk=1).update(panel_name="Sneaky")
    site_settings_forget_local()
    assert site_settings().panel_name == "SMM Panel"
    # ...and a save through the service replaces it at once.
    site_settings_update(actor=None, panel_name="Renamed")
    assert site_settings().panel_name == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_a_change_made_in_another_process_shows_on_the_next_request(client: Client, settings: Any) -> None:
    if connection.vendor != "postgresql" or "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("needs PostgreSQL and the Redis cache (CI runs it there)")
    assert site_settings().panel_name == "SMM Panel"  # cached now, in Redis
    assert cache.get(CACHE_KEY) is not None
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "smmpanel.settings",
    }
    code = (
        "import django; django.setup()\n"
        "from siteconf.services import site_settings_update\n"
        "site_settings_update(actor=None, panel_name='Renamed Elsewhere')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    request_started.send(sender=None)  # the next request of this process
    assert site_settings().panel_name == "Renamed Elsewhere"
    assert "Renamed Elsewhere" in client.get("/").content.decode()


# --- history, the currency lock, the Owner only ----------------------------------------------------
def test_changes_made_in_the_admin_are_in_the_history_with_who_and_what(db: Any) -> None:
    owner = _staff("Owner", "owner")
    client = _admin_client(owner)
    site_settings_update(actor=None, panel_name="First")
    response = client.post(CHANGE_URL, _form(panel_name="Second", support_email="help@example.com"))
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = SiteSettings.history.latest()
    assert latest.history_user == owner
    assert (latest.panel_name, latest.support_email) == ("Second", "help@example.com")
    delta = latest.diff_against(latest.prev_record)
    assert {change.field for change in delta.changes} == {"panel_name", "support_email"}
    history = client.get("/admin/siteconf/sitesettings/1/history/")
    assert history.status_code == 200 and "Second" in history.content.decode()


def test_the_base_currency_changes_until_money_moves_then_is_refused(customer: User) -> None:
    owner = _staff("Owner", "owner")
    client = _admin_client(owner)
    assert client.post(CHANGE_URL, _form(base_currency="EUR")).status_code == 302
    assert site_settings().base_currency == "EUR"
    fund(customer, "10")
    response = client.post(CHANGE_URL, _form(base_currency="GBP"))
    assert response.status_code == 200
    assert "cannot change once money has moved" in response.content.decode()
    with pytest.raises(SiteSettingsError, match="money has already moved"):
        site_settings_update(actor=owner, base_currency="GBP")
    assert SiteSettings.objects.get(pk=1).base_currency == "EUR" and site_settings().base_currency == "EUR"
    # Other settings still change.
    assert client.post(CHANGE_URL, _form(panel_name="Still editable")).status_code == 302
    assert site_settings().panel_name == "Still editable"


@pytest.mark.parametrize("role", ["Finance", "Support", "Catalogue", None])
def test_staff_other_than_the_owner_may_look_but_not_change(db: Any, role: str | None) -> None:
    site_settings_update(actor=None, panel_name="Kept")
    user = _staff(role, "someone")
    client = _admin_client(user)
    before = SiteSettings.history.count()
    response = client.post(CHANGE_URL, _form(panel_name="Changed", signup_open=None))
    assert response.status_code == 403
    assert site_settings().panel_name == "Kept" and SiteSettings.objects.get(pk=1).signup_open
    assert SiteSettings.history.count() == before
    page = client.get(CHANGE_URL)
    assert page.status_code == (200 if role else 403)
    if role:
        assert 'name="panel_name"' not in page.content.decode()  # read-only


def test_the_owner_uploads_a_logo_served_with_its_checked_type(db: Any, client: Client) -> None:
    owner = _staff("Owner", "owner")
    admin = _admin_client(owner)
    from django.core.files.uploadedfile import SimpleUploadedFile

    fake = SimpleUploadedFile("logo.png", b"<html><script>alert(1)</script>", content_type="image/png")
    response = admin.post(CHANGE_URL, {**_form(), "logo_upload": fake})
    assert response.status_code == 200 and "must be a PNG, JPEG, GIF or WebP" in response.content.decode()
    big = SimpleUploadedFile("logo.png", PNG + b"\x00" * 300_000, content_type="image/png")
    assert "larger than" in admin.post(CHANGE_URL, {**_form(), "logo_upload": big}).content.decode()
    assert not site_settings().has_logo
    good = SimpleUploadedFile("logo.png", PNG, content_type="text/html")
    assert admin.post(CHANGE_URL, {**_form(), "logo_upload": good}).status_code == 302
    conf = site_settings()
    assert conf.has_logo
    url = reverse("siteconf:logo", args=[conf.logo_version])
    assert f'src="{url}"' in client.get("/").content.decode()
    served = client.get(url)
    assert served["Content-Type"] == "image/png" and served.content == PNG
    assert "sandbox" in served["Content-Security-Policy"]
    assert client.get(reverse("siteconf:logo", args=["0000"])).status_code == 404
    assert admin.post(CHANGE_URL, {**_form(), "logo_remove": "on"}).status_code == 302
    assert not site_settings().has_logo and client.get(url).status_code == 404


def test_support_email_and_legal_links_are_in_every_page_footer(client: Client, site_conf: Any) -> None:
    site_conf(terms_url="https://legal.example/terms", privacy_url="/privacy-policy/", support_email="a@b.example")
    html = client.get("/").content.decode()
    assert 'href="https://legal.example/terms"' in html and 'href="/privacy-policy/"' in html
    assert "a@b.example" in client.get("/contact/").content.decode()
    with pytest.raises(Exception):  # noqa: B017  (a ValidationError from full_clean)
        site_conf(terms_url="javascript:alert(1)")
