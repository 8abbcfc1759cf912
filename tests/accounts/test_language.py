"""The language a customer reads the panel in: Django's set_language at /i18n/setlang/,
the choice kept on the account, applied at login and over an older cookie."""

from __future__ import annotations

import shutil

import pytest
from django.conf import settings
from django.urls import reverse

from accounts.models import User
from tests import po

COOKIE = settings.LANGUAGE_COOKIE_NAME


def test_languages_are_english_spanish_portuguese_turkish_russian() -> None:
    assert [code for code, _name in settings.LANGUAGES] == ["en", "es", "pt-br", "tr", "ru"]
    assert reverse("set_language") == "/i18n/setlang/"


def test_set_language_keeps_a_signed_in_customers_choice(client, customer) -> None:
    client.force_login(customer)
    response = client.post("/i18n/setlang/", {"language": "ru", "next": "/orders/"})
    assert response.status_code == 302 and response["Location"] == "/orders/"
    assert response.cookies[COOKIE].value == "ru"
    customer.refresh_from_db()
    assert customer.language == "ru"


def test_set_language_for_a_visitor_sets_only_the_cookie(client, customer) -> None:
    response = client.post("/i18n/setlang/", {"language": "pt-br", "next": "/"})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "pt-br"
    customer.refresh_from_db()
    assert customer.language == ""


@pytest.mark.parametrize("language", ["xx", "", "de", "ru" * 40])
def test_an_unknown_language_changes_nothing(client, customer, language) -> None:
    customer.language = "es"
    customer.save()
    client.force_login(customer)
    response = client.post("/i18n/setlang/", {"language": language, "next": "/"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.language == "es"


def test_an_outside_next_is_not_followed(client, customer) -> None:
    client.force_login(customer)
    response = client.post("/i18n/setlang/", {"language": "tr", "next": "https://evil.example/"})
    assert "evil" not in response.get("Location", "")


def test_set_language_refuses_get(client) -> None:
    assert client.get("/i18n/setlang/?language=ru").status_code == 405


def test_set_language_needs_the_csrf_token(customer) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)
    assert strict.post("/i18n/setlang/", {"language": "ru", "next": "/"}).status_code == 403
    customer.refresh_from_db()
    assert customer.language == ""


def test_the_account_language_wins_over_an_older_cookie(client, customer) -> None:
    """Chosen on another device: this browser's cookie still says Spanish."""
    customer.language = "ru"
    customer.save()
    client.force_login(customer)
    client.cookies[COOKIE] = "es"
    response = client.get(reverse("orders:list"))
    assert response.status_code == 200
    assert response["Content-Language"] == "ru"
    assert response.cookies[COOKIE].value == "ru"


def test_login_applies_the_account_language(client, customer) -> None:
    customer.set_password("a-long-pass-phrase-9")
    customer.language = "tr"
    customer.save()
    response = client.post(reverse("account_login"), {"login": "customer", "password": "a-long-pass-phrase-9"})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "tr"
    # After logging out the browser keeps reading Turkish; the next login on another device too.
    client.post(reverse("account_logout"))
    assert client.get("/")["Content-Language"] == "tr"


def test_without_a_choice_the_browser_language_is_used(client, customer) -> None:
    client.force_login(customer)
    response = client.get(reverse("orders:list"), headers={"accept-language": "es-MX,es;q=0.9"})
    assert response["Content-Language"] == "es"
    assert COOKIE not in response.cookies


def test_sign_up_keeps_the_language_it_was_made_in(client, db) -> None:
    client.cookies[COOKIE] = "pt-br"
    response = client.post(
        reverse("account_signup"),
        {
            "username": "novo",
            "email": "novo@example.com",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert User.objects.get(username="novo").language == "pt-br"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs GNU gettext")
def test_navigation_and_order_errors_are_translated_on_pages(client, customer, settings, tmp_path) -> None:
    po.compile_catalogue(
        tmp_path,
        "ru",
        [
            po.Entry(msgid="New order", msgstr="Новый заказ"),
            po.Entry(msgid="Incorrect link", msgstr="Неверная ссылка"),
        ],
    )
    settings.LOCALE_PATHS = [tmp_path]
    customer.language = "ru"
    customer.save()
    client.force_login(customer)
    html = client.get(reverse("orders:new")).content.decode()
    assert "Новый заказ" in html


def test_the_header_offers_every_language_in_its_own_name_to_visitors_and_customers(client, customer) -> None:
    for signed_in in (False, True):
        if signed_in:
            client.force_login(customer)
        html = client.get(reverse("catalog:services")).content.decode()
        assert 'action="/i18n/setlang/"' in html
        for code, name in settings.LANGUAGES:
            assert f'value="{code}" lang="{code}"' in html and name in html


def test_the_account_language_card_posts_to_set_language_and_comes_back(rf, customer) -> None:
    from django.template.loader import render_to_string

    request = rf.get("/account/")
    request.user = customer
    html = render_to_string("account/_language.html", request=request)
    assert 'action="/i18n/setlang/"' in html and 'name="next" value="/account/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert all(f'<option value="{code}"' in html for code, _name in settings.LANGUAGES)


def test_language_names_are_never_translated(client, db) -> None:
    """Django's own Russian catalogue translates "English"; the switcher must not."""
    client.cookies[COOKIE] = "ru"
    response = client.get(reverse("catalog:services"))
    assert response["Content-Language"] == "ru"
    html = response.content.decode()
    assert 'lang="en" class="dropdown-item py-2" data-i18n-skip>English</button>' in html
    assert "Английский" not in html
