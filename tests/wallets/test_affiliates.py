"""The affiliate flow end to end: link → visit → sign-up (allauth) → deposit → commission."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.wallets.factories import PaymentFactory
from wallets.models import Affiliate, Entry
from wallets.referral import REFERRAL_COOKIE
from wallets.selectors import affiliate_stats, wallet_balance
from wallets.services import affiliate_get_or_create, payment_approve

pytestmark = pytest.mark.django_db
D = Decimal


def _sign_up(client: Client, username: str) -> User:
    response = client.post(
        reverse("account_signup"),
        {
            "username": username,
            "email": f"{username}@example.com",
            "password1": "a-long-and-unusual-passphrase-42",
            "password2": "a-long-and-unusual-passphrase-42",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return User.objects.get(username=username)


def test_referral_link_counts_the_visit_and_leads_to_sign_up(client, customer):
    code = affiliate_get_or_create(user=customer).code
    response = client.get(reverse("wallets:referral", args=[code]))
    assert response.status_code == 302
    assert response["Location"] == reverse("account_signup")
    assert Affiliate.objects.get(user=customer).visits == 1
    assert REFERRAL_COOKIE in response.cookies


def test_anonymous_referral_visits_write_no_session_row(client, customer):
    code = affiliate_get_or_create(user=customer).code
    for _ in range(3):
        visitor = Client()
        response = visitor.get(reverse("wallets:referral", args=[code]), follow=True)
        assert response.status_code == 200
    assert Session.objects.count() == 0
    assert Affiliate.objects.get(user=customer).visits == 3


def test_repeated_visits_from_one_browser_count_once(client, customer):
    code = affiliate_get_or_create(user=customer).code
    for _ in range(3):
        client.get(reverse("wallets:referral", args=[code]))
    assert Affiliate.objects.get(user=customer).visits == 1


def test_unknown_code_counts_nothing_and_remembers_nothing(client, customer):
    affiliate_get_or_create(user=customer)
    response = client.get(reverse("wallets:referral", args=["nosuchcode"]))
    assert response.status_code == 302
    assert Affiliate.objects.get(user=customer).visits == 0
    assert REFERRAL_COOKIE not in response.cookies


def test_visiting_your_own_link_is_not_counted(customer_client, customer):
    code = affiliate_get_or_create(user=customer).code
    customer_client.get(reverse("wallets:referral", args=[code]))
    assert Affiliate.objects.get(user=customer).visits == 0


def test_post_on_the_referral_link_is_405(client, customer):
    code = affiliate_get_or_create(user=customer).code
    assert client.post(reverse("wallets:referral", args=[code])).status_code == 405
    assert Affiliate.objects.get(user=customer).visits == 0


def test_sign_up_through_the_link_sets_referred_by(client, customer):
    code = affiliate_get_or_create(user=customer).code
    client.get(reverse("wallets:referral", args=[code]))
    newcomer = _sign_up(client, "newcomer")
    assert newcomer.referred_by == customer
    assert newcomer.check_password("a-long-and-unusual-passphrase-42")


def test_sign_up_without_a_link_has_no_referrer(client, customer):
    assert _sign_up(client, "newcomer").referred_by is None


def test_sign_up_with_a_forged_referral_cookie_has_no_referrer(client, customer):
    code = affiliate_get_or_create(user=customer).code
    client.cookies[REFERRAL_COOKIE] = code  # unsigned: anyone could write it
    assert _sign_up(client, "newcomer").referred_by is None


def test_the_whole_flow_pays_the_commission_once_and_shows_it(client, customer, staff, settings):
    code = affiliate_get_or_create(user=customer).code
    client.get(reverse("wallets:referral", args=[code]))
    newcomer = _sign_up(client, "newcomer")
    payment = PaymentFactory(user=newcomer, amount=D("60"))
    payment_approve(payment_id=payment.pk, actor=staff)
    payment_approve(payment_id=payment.pk, actor=staff)  # a second notification
    PaymentFactory(user=newcomer, amount=D("1000"))  # pending: no commission yet

    assert wallet_balance(user=customer) == D("3")
    assert Entry.objects.filter(user=customer, kind=Entry.Kind.COMMISSION).count() == 1

    stats = affiliate_stats(affiliate=Affiliate.objects.get(user=customer))
    assert (stats.visits, stats.signups, stats.deposits_count) == (1, 1, 1)
    assert (stats.deposits_total, stats.commissions_total) == (D("60"), D("3"))

    page = Client()
    page.force_login(customer)
    html = page.get(reverse("wallets:affiliates")).content.decode()
    assert re.search(r'id="aff-earned"><span class="money" title="3 USD"[^>]*>3\.00 USD<', html)
    assert f"Referral commission on deposit #{payment.pk}" in html
