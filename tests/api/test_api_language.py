"""The API speaks the protocol's English whatever language the request asks for, while the
same errors on the web pages are translated."""

from __future__ import annotations

import shutil

import pytest
from django.urls import reverse

from kernel import protocol
from tests import po

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs GNU gettext")

RUSSIAN = [
    po.Entry(msgid=protocol.ERR_INCORRECT_LINK, msgstr="Неверная ссылка"),
    po.Entry(msgid=protocol.ERR_INCORRECT_SERVICE, msgstr="Неверный ID услуги"),
    po.Entry(
        msgid="Quantity less than minimal %(minimum)s",
        msgstr="Количество меньше минимального %(minimum)s",
        flags={"python-format"},
    ),
    po.Entry(msgid="Incorrect %(field)s", msgstr="Неверное поле: %(field)s", flags={"python-format"}),
    po.Entry(msgid="Quantity", msgstr="Количество"),
]


@pytest.fixture
def russian(settings, tmp_path):
    po.compile_catalogue(tmp_path, "ru", RUSSIAN)
    settings.LOCALE_PATHS = [tmp_path]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"link": "not a link", "quantity": "100"}, protocol.ERR_INCORRECT_LINK),
        ({"link": "https://example.com/p", "quantity": "1"}, "Quantity less than minimal 50"),
        ({"link": "https://example.com/p", "quantity": "x"}, "Quantity less than minimal 50"),
    ],
)
def test_api_errors_stay_english_for_a_russian_request(client, russian, key, service, params, error) -> None:
    client.cookies["django_language"] = "ru"
    response = client.post(
        "/api/v2",
        {"key": key, "action": "add", "service": service.pk, **params},
        headers={"accept-language": "ru"},
    )
    assert response.json() == {"error": error}
    assert response["Content-Language"] == "en"


def test_api_unknown_service_stays_english(client, russian, key) -> None:
    client.cookies["django_language"] = "ru"
    response = client.post(
        "/api/v2",
        {"key": key, "action": "add", "service": "999999", "link": "https://x.example/"},
        headers={"accept-language": "ru"},
    )
    assert response.json() == {"error": "Incorrect service ID"}


def test_the_same_error_is_translated_on_the_new_order_page(client, russian, customer, service) -> None:
    """The catalogue above is live: the page shows the Russian text the API did not."""
    from tests.api.conftest import fund

    fund(customer)
    customer.language = "ru"
    customer.save()
    client.force_login(customer)
    response = client.post(
        reverse("orders:new"), {"service": service.pk, "link": "not a link", "quantity": "100", "token": "t1"}
    )
    html = response.content.decode()
    assert "Неверная ссылка" in html
    assert protocol.ERR_INCORRECT_LINK not in html
    response = client.post(
        reverse("orders:new"), {"service": service.pk, "link": "https://example.com/p", "quantity": "1", "token": "t2"}
    )
    assert "Количество меньше минимального 50" in response.content.decode()
