"""Staff change many services at once: markup, category, selling, names and descriptions;
prices follow the one pricing rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from catalog.models import Category, PriceChange, Service
from tests.factories import RouteFactory, ServiceFactory, UpstreamServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(db):
    services = []
    for n in range(3):
        upstream = UpstreamServiceFactory(rate=Decimal("1.00"))
        service = ServiceFactory(name=f"IG Followers {n}", price=Decimal("1.300000"), cost=Decimal("1.000000"))
        RouteFactory(service=service, upstream=upstream)
        services.append(service)
    return services


@pytest.fixture
def admin_client(client, staff, settings):
    settings.STAFF_REQUIRE_MFA = False
    client.force_login(staff)
    return client


def bulk(admin_client, services, **form):
    data = {"action": "bulk_edit", "_selected_action": [s.pk for s in services], "apply": "1", **form}
    return admin_client.post(reverse("admin:catalog_service_changelist"), data, follow=True)


def test_markup_category_selling_and_names_change_for_all_selected(admin_client, three):
    other = Category.objects.create(name="Instagram Premium")
    response = bulk(
        admin_client,
        three[:2],
        markup_percent="50",
        category=str(other.pk),
        enabled="off",
        find="IG",
        replace="Instagram",
    )
    assert "2 service(s) edited" in response.content.decode()
    changed = {s.pk: s for s in Service.objects.filter(pk__in=[s.pk for s in three])}
    for service in three[:2]:
        row = changed[service.pk]
        assert row.markup_percent == Decimal("50") and row.category == other and not row.is_enabled
        assert row.name.startswith("Instagram Followers") and row.price == Decimal("1.500000")
    untouched = changed[three[2].pk]
    assert untouched.name == "IG Followers 2" and untouched.is_enabled and untouched.price == Decimal("1.300000")
    assert PriceChange.objects.filter(service__in=three[:2], new_price=Decimal("1.500000")).count() == 2


def test_a_description_is_set_only_when_asked(admin_client, three):
    bulk(admin_client, three, description="ignored")
    assert not Service.objects.filter(description="ignored").exists()
    bulk(admin_client, three, description="Start 0-1 h", set_description="on")
    assert Service.objects.filter(description="Start 0-1 h").count() == 3


def test_the_form_is_shown_first_and_bad_input_changes_nothing(admin_client, three):
    page = admin_client.post(
        reverse("admin:catalog_service_changelist"), {"action": "bulk_edit", "_selected_action": [s.pk for s in three]}
    )
    assert "Edit services in bulk" in page.content.decode()
    bulk(admin_client, three, markup_percent="-500")
    assert not Service.objects.filter(markup_percent__isnull=False).exists()
