from decimal import Decimal as D

import pytest
from django.urls import reverse

from catalog.models import Category, Service
from providers.models import Provider
from tests.factories import ProviderFactory, UpstreamServiceFactory

pytestmark = pytest.mark.django_db


def test_provider_key_is_never_rendered_after_saving(client, staff):
    provider = ProviderFactory(api_key="supersecretkey-1234567890")
    client.force_login(staff)
    body = client.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert "supersecretkey-1234567890" not in body
    assert "supe…7890" in body


def test_blank_key_keeps_the_current_one(client, staff):
    provider = ProviderFactory(api_key="keep-me-please")
    client.force_login(staff)
    response = client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]),
        {
            "name": provider.name,
            "api_url": provider.api_url,
            "api_key": "",
            "currency": "USD",
            "exchange_rate": "1",
            "low_balance_alert": "10",
            "is_enabled": "on",
        },
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.api_key == "keep-me-please"


def test_private_provider_url_is_refused_in_production(client, staff, settings):
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = False
    client.force_login(staff)
    response = client.post(
        reverse("admin:providers_provider_add"),
        {
            "name": "evil",
            "api_url": "http://169.254.169.254/latest",
            "api_key": "k",
            "currency": "USD",
            "exchange_rate": "1",
            "low_balance_alert": "10",
            "is_enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "private, loopback or link-local" in response.content.decode()
    assert not Provider.objects.filter(name="evil").exists()


def test_import_action_creates_services_in_chosen_category_with_markup(client, staff):
    a = UpstreamServiceFactory(rate=D("1.0"))
    b = UpstreamServiceFactory(rate=D("2.0"), provider=a.provider)
    target = Category.objects.create(name="Imported")
    client.force_login(staff)
    url = reverse("admin:providers_upstreamservice_changelist")
    confirm = client.post(url, {"action": "import_into_catalog", "_selected_action": [a.pk, b.pk]})
    assert confirm.status_code == 200 and "Import 2 upstream services" in confirm.content.decode()
    assert Service.objects.count() == 0
    done = client.post(
        url,
        {
            "action": "import_into_catalog",
            "_selected_action": [a.pk, b.pk],
            "apply": "1",
            "category": target.pk,
            "markup_percent": "100",
        },
    )
    assert done.status_code == 302
    prices = sorted(Service.objects.filter(category=target).values_list("price", flat=True))
    assert prices == [D("2.000000"), D("4.000000")]


def test_customers_cannot_reach_the_admin(client, customer):
    client.force_login(customer)
    response = client.get(reverse("admin:providers_provider_changelist"))
    assert response.status_code == 403 and "The admin is for staff." in response.content.decode()
