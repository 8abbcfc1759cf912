from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time

from accounts.models import User
from accounts.services import api_key_issue
from devtools.ports import free_port
from support import services as support_services
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # allauth keeps failed-login counters in the cache, which may be a shared Redis.
    cache.clear()


def _totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def _with_totp(user: User) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def _login(client: Client, login: str, password: str) -> Any:
    return client.post(reverse("account_login"), {"login": login, "password": password})


# --- the account page ------------------------------------------------------------------------
def test_account_page_shows_email_security_and_links(client: Client, customer: User) -> None:
    client.force_login(customer)
    response = client.get(reverse("accounts:account"))
    body = response.content.decode()
    assert response.status_code == 200
    assert customer.email in body
    assert reverse("account_change_password") in body
    assert 'id="mfa-status">Off' in body
    assert reverse("api:page") in body
    assert 'name="timezone"' in body
    # An unverified address cannot take 2FA (allauth refuses it): the page offers the
    # verification link again instead of a set-up button that leads nowhere.
    assert reverse("mfa_activate_totp") not in body
    assert 'id="resend-verification"' in body and 'name="action_send"' in body

    EmailAddress.objects.update_or_create(
        user=customer, email=customer.email, defaults={"verified": True, "primary": True}
    )
    body = client.get(reverse("accounts:account")).content.decode()
    assert reverse("mfa_activate_totp") in body and 'id="resend-verification"' not in body


def test_resend_link_sends_the_verification_mail_again(client: Client, customer: User, mailoutbox) -> None:
    EmailAddress.objects.update_or_create(
        user=customer, email=customer.email, defaults={"verified": False, "primary": True}
    )
    client.force_login(customer)
    response = client.post(reverse("account_email"), {"email": customer.email, "action_send": ""})
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [[customer.email]]


def test_account_page_needs_login(client: Client) -> None:
    response = client.get(reverse("accounts:account"))
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_timezone_is_saved_and_dates_are_shown_in_it(client: Client, customer: User) -> None:
    client.force_login(customer)
    with freeze_time("2030-01-15 23:30:00"):
        ticket = support_services.ticket_open(user=customer, subject="Late", kind="other", body="x")
    page = client.get(reverse("support:detail", args=[ticket.pk])).content.decode()
    assert "2030-01-15 23:30" in page  # UTC by default
    response = client.post(reverse("accounts:timezone"), {"timezone": "Asia/Tokyo"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.timezone == "Asia/Tokyo"
    assert "Time zone set to Asia/Tokyo" in client.get(response["Location"]).content.decode()
    page = client.get(reverse("support:detail", args=[ticket.pk])).content.decode()
    assert "2030-01-16 08:30" in page  # UTC+9


def test_unknown_timezone_is_refused_and_nothing_changes(client: Client, customer: User) -> None:
    client.force_login(customer)
    response = client.post(reverse("accounts:timezone"), {"timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    customer.refresh_from_db()
    assert customer.timezone == "UTC"


def test_a_broken_stored_timezone_falls_back_to_utc(client: Client, customer: User) -> None:
    User.objects.filter(pk=customer.pk).update(timezone="Nowhere/Land")
    client.force_login(customer)
    assert client.get(reverse("accounts:account")).status_code == 200


def test_timezone_update_is_post_only_and_csrf_protected(customer: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    assert client.get(reverse("accounts:timezone")).status_code == 405
    assert client.post(reverse("accounts:timezone"), {"timezone": "Europe/Paris"}).status_code == 403
    customer.refresh_from_db()
    assert customer.timezone == "UTC"


# --- sign-up, verification, password reset --------------------------------------------------
def test_signup_sends_a_verification_email_and_the_link_verifies(
    client: Client, site_conf: Any, mailoutbox: Any
) -> None:
    site_conf(email_verification="mandatory")
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    [email] = mailoutbox
    assert email.to == ["new@example.com"]
    link = next(word for word in email.body.split() if "/accounts/confirm-email/" in word)
    path = link.split("testserver", 1)[-1]
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302
    from allauth.account.models import EmailAddress

    assert EmailAddress.objects.get(email="new@example.com").verified


@pytest.mark.parametrize(
    ("username", "email"),
    [("newbie", "new@exa\u202eelpmaxe.com"), ("newbie", "new@example.c\u200bom"), ("new\u202ebie", "new@example.com")],
)
def test_signup_refuses_invisible_characters_in_names(client: Client, username: str, email: str) -> None:
    response = client.post(
        reverse("account_signup"),
        {"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert not User.objects.exists()


def test_password_reset_mail_is_sent_for_known_addresses_only(client: Client, customer: User, mailoutbox: Any) -> None:
    known = client.post(reverse("account_reset_password"), {"email": customer.email})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    # An unknown address gets a "no account" notice instead of a link: the page does not tell.
    assert "/accounts/password/reset/key/" in mailoutbox[0].body
    assert all("/password/reset/key/" not in m.body for m in mailoutbox[1:])


def _links(body: str) -> list[str]:
    return [word for word in body.split() if "://" in word]


def test_emailed_links_use_the_configured_address_not_the_host_header(
    customer: User, settings: Any, site_conf: Any, mailoutbox: Any
) -> None:
    settings.ALLOWED_HOSTS = ["*"]  # even where the host is not checked
    settings.PANEL_BASE_URL = "https://panel.example"
    site_conf(email_verification="mandatory")
    forged = Client(HTTP_HOST="evil.example")
    forged.post(reverse("account_reset_password"), {"email": customer.email})
    forged.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    forged.post(
        reverse("account_signup"),
        {"email": "new@example.com", "username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert len(mailoutbox) == 3
    for message in mailoutbox:
        assert "evil.example" not in message.body and "evil.example" not in message.subject
        assert _links(message.body) and all(link.startswith("https://panel.example/") for link in _links(message.body))
    reset_link = _links(mailoutbox[0].body)[0]
    assert "/accounts/password/reset/key/" in reset_link
    assert Client().get(reset_link.removeprefix("https://panel.example")).status_code in (200, 302)


# --- brute force -------------------------------------------------------------------------------
@pytest.mark.parametrize("known", [True, False])
def test_login_is_throttled_after_five_failures_with_the_same_answer(client: Client, known: bool) -> None:
    if known:
        UserFactory(username="victim", email="victim@example.com")
    answers = [_login(client, "victim@example.com", "wrong password") for _ in range(5)]
    assert {r.status_code for r in answers} == {200}
    assert all("not correct" in r.content.decode() for r in answers)
    locked = _login(client, "victim@example.com", PASSWORD)
    assert locked.status_code in (200, 429)
    assert "Too many failed login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_throttled_responses_look_the_same_for_known_and_unknown_accounts() -> None:
    UserFactory(username="victim", email="victim@example.com")
    seen = []
    for login in ("victim@example.com", "ghost@example.com"):
        cache.clear()
        client = Client()
        for _ in range(5):
            _login(client, login, "wrong")
        response = _login(client, login, "wrong")
        seen.append((response.status_code, "Too many failed login attempts" in response.content.decode()))
    assert seen[0] == seen[1] and seen[0][1]


def test_typing_the_username_or_the_email_counts_against_the_same_account(client: Client) -> None:
    UserFactory(username="victim", email="victim@example.com")
    for login in ("victim", "victim@example.com", "VICTIM", "victim", "Victim@Example.com"):
        assert "not correct" in _login(client, login, "wrong password").content.decode()
    locked = _login(client, "victim", PASSWORD)
    assert "Too many failed login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_logins_are_counted_per_client_address_behind_trusted_proxies(settings: Any) -> None:
    # Ten names from one address are throttled by the per-address limit, also when every
    # request reaches the panel through the same proxy.
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.7")
    for i in range(10):
        _login(attacker, f"guess{i}@example.com", "wrong")
    assert "Too many failed login attempts" in _login(attacker, "guess10@example.com", "wrong").content.decode()
    # Another customer behind the same proxy is not throttled by it.
    neighbour = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert "not correct" in _login(neighbour, "someone@example.com", "wrong").content.decode()


def test_x_forwarded_for_is_ignored_without_trusted_proxies(settings: Any) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    for i in range(10):
        forged = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        _login(forged, f"guess{i}@example.com", "wrong")
    forged = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert "Too many failed login attempts" in _login(forged, "guess10@example.com", "wrong").content.decode()


def test_customers_log_in_while_the_throttling_cache_is_down(client: Client, customer: User, settings: Any) -> None:
    # Found by `make chaos`: with the cache on Redis, nobody could log in while Redis restarted
    # (a 500 for every attempt, right password or not).
    closed = free_port()
    settings.CACHES = {
        "default": {
            "BACKEND": "kernel.cache.ForgivingRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed}/0",
        }
    }
    wrong = _login(client, customer.email, "wrong password")
    assert wrong.status_code == 200 and "not correct" in wrong.content.decode()
    right = _login(client, customer.email, PASSWORD)
    assert right.status_code == 302
    assert client.session["_auth_user_id"] == str(customer.pk)


# --- two-factor authentication for staff -------------------------------------------------------
def test_admin_login_form_redirects_to_allauth(client: Client) -> None:
    response = client.get(reverse("admin:login") + "?next=/admin/orders/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=%2Fadmin%2Forders%2F"
    evil = client.get(reverse("admin:login") + "?next=https://evil.example/")
    assert "evil" not in evil["Location"]


def test_staff_without_2fa_are_sent_to_set_it_up(client: Client, staff: User, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = True
    client.force_login(staff)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")


def test_staff_with_2fa_must_have_used_it_in_this_session(client: Client, staff: User, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = True
    _with_totp(staff)
    client.force_login(staff)  # no second factor in this session
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_reauthenticate"))


def test_staff_login_with_password_and_code_opens_the_admin(client: Client, staff: User, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = True
    secret = _with_totp(staff)
    response = _login(client, staff.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # the password alone does not sign in
    assert client.get(reverse("admin:index")).status_code == 302
    response = client.post(reverse("mfa_authenticate"), {"code": _totp_code(secret)})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_wrong_code_does_not_sign_in(client: Client, staff: User) -> None:
    _with_totp(staff)
    _login(client, staff.username, PASSWORD)
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_rule_can_be_switched_off_and_never_applies_to_customers(
    client: Client, staff: User, customer: User, settings: Any
) -> None:
    settings.STAFF_REQUIRE_MFA = False
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    settings.STAFF_REQUIRE_MFA = True
    client.force_login(customer)
    assert client.get(reverse("accounts:account")).status_code == 200
    # A customer in the admin is refused in the panel's layout, never sent to a 2FA page.
    response = client.get(reverse("admin:index"))
    assert response.status_code == 403 and not response.has_header("Location")


def test_totp_setup_page_renders_in_the_panel_layout(client: Client, customer: User) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=customer, email=customer.email, primary=True, verified=True)
    _login(client, customer.username, PASSWORD)
    # Setting up 2FA asks for the password again first.
    response = client.get(reverse("mfa_activate_totp"))
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    client.post(response["Location"], {"password": PASSWORD})
    body = client.get(reverse("mfa_activate_totp")).content.decode()
    assert "Authenticator" in body and "bootstrap.min.css" in body and 'id="sidebar"' in body
    assert "data:image/svg+xml" in body  # the QR code needs no external service
    assert Authenticator.objects.count() == 0


def test_allauth_pages_use_the_panel_layout(client: Client) -> None:
    for name in ("account_login", "account_signup", "account_reset_password"):
        body = client.get(reverse(name)).content.decode()
        assert "bootstrap.min.css" in body and "panel-entrance" in body, name
        assert "form-control" in body, name


def test_home_is_the_landing_page_for_visitors(client: Client) -> None:
    body = client.get("/").content.decode()
    assert reverse("account_signup") in body and reverse("catalog:services") in body


def test_home_sends_customers_to_the_new_order_page_when_it_exists(client: Client, customer: User) -> None:
    from django.urls import NoReverseMatch

    client.force_login(customer)
    response = client.get("/")
    try:
        target = reverse("orders:new")
    except NoReverseMatch:
        assert response.status_code == 200
    else:
        assert response.status_code == 302 and response["Location"] == target


def test_dates_use_the_users_zone_only_during_their_request(client: Client, customer: User) -> None:
    from django.utils import timezone

    User.objects.filter(pk=customer.pk).update(timezone="America/New_York")
    client.force_login(customer)
    client.get(reverse("accounts:account"))
    assert timezone.get_current_timezone_name() == "UTC"
    assert dt.datetime.now(dt.UTC)  # the test itself still runs in UTC


# --- a new password stops the API key ----------------------------------------------------------
def _api_balance(raw_key: str) -> dict[str, Any]:
    return json.loads(Client().post("/api/v2", {"key": raw_key, "action": "balance"}).content)


def test_password_reset_stops_the_api_key_and_the_api_page_says_so(
    client: Client, customer: User, mailoutbox: Any
) -> None:
    raw_key = api_key_issue(user=customer)
    assert "balance" in _api_balance(raw_key)
    client.post(reverse("account_reset_password"), {"email": customer.email})
    link = next(word for word in mailoutbox[0].body.split() if "/accounts/password/reset/key/" in word)
    # allauth moves the key out of the address: the form is posted where the link redirects.
    form = client.get(urlsplit(link).path, follow=True)
    response = client.post(
        form.redirect_chain[-1][0],
        {"password1": "another-long-passphrase-77", "password2": "another-long-passphrase-77"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password("another-long-passphrase-77")
    assert _api_balance(raw_key) == {"error": "Invalid API key"}

    client.force_login(customer)
    page = client.get(reverse("api:page")).content.decode()
    assert 'id="api-key-revoked"' in page and "your password was changed or reset" in page
    # A new key works again.
    fresh = api_key_issue(user=customer)
    assert "balance" in _api_balance(fresh)
    assert 'id="api-key-revoked"' not in client.get(reverse("api:page")).content.decode()


def test_password_change_stops_the_api_key(client: Client, customer: User) -> None:
    raw_key = api_key_issue(user=customer)
    client.force_login(customer)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "another-long-passphrase-77", "password2": "another-long-passphrase-77"},
    )
    assert response.status_code == 302
    assert _api_balance(raw_key) == {"error": "Invalid API key"}
    assert 'id="api-key-revoked"' in client.get(reverse("api:page")).content.decode()


def test_a_wrong_current_password_leaves_the_api_key_working(client: Client, customer: User) -> None:
    raw_key = api_key_issue(user=customer)
    client.force_login(customer)
    client.post(
        reverse("account_change_password"),
        {"oldpassword": "wrong", "password1": "another-long-passphrase-77", "password2": "another-long-passphrase-77"},
    )
    assert "balance" in _api_balance(raw_key)
