"""Upstream names and descriptions that change at a sync are recorded for review; accepting
copies the new text into the service, dismissing keeps the service's own, and only staff
with the review permission decide."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from catalog.models import Service, TextChange
from catalog.services import catalog_import_upstream, upstream_services_mirror
from tests.catalog.test_sync import info
from tests.factories import ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sold(staff: Any) -> tuple[Any, Service]:
    provider = ProviderFactory()
    upstream_services_mirror(provider=provider, services=[info(1, description="Real followers"), info(2)])
    from providers.models import UpstreamService

    catalog_import_upstream(
        upstream_ids=UpstreamService.objects.filter(external_id="1").values_list("pk", flat=True), actor=staff
    )
    return provider, Service.objects.get()


def _member(role: str) -> Any:
    user = UserFactory(username=f"texts-{role.lower()}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_a_changed_description_of_a_sold_service_is_recorded_once(sold: tuple[Any, Service]) -> None:
    provider, service = sold
    upstream_services_mirror(provider=provider, services=[info(1, description="Bots, no refill"), info(2, name="x")])
    change = TextChange.objects.get()  # the unsold upstream service #2 records nothing
    assert (change.service, change.field, change.old_text, change.new_text) == (
        service,
        "description",
        "Real followers",
        "Bots, no refill",
    )
    assert change.status == "pending"
    upstream_services_mirror(provider=provider, services=[info(1, description="Bots, no refill"), info(2, name="x")])
    assert TextChange.objects.count() == 1  # unchanged since: nothing new
    service.refresh_from_db()
    assert service.description == "Real followers"  # nothing public changes by itself


def test_accept_copies_and_dismiss_keeps(sold: tuple[Any, Service], settings: Any) -> None:
    provider, service = sold
    upstream_services_mirror(
        provider=provider, services=[info(1, name="Followers HQ", description="Bots, no refill"), info(2)]
    )
    name_change = TextChange.objects.get(field="name")
    text_change = TextChange.objects.get(field="description")
    settings.STAFF_REQUIRE_MFA = False
    url = reverse("admin:catalog_textchange_changelist")
    for role, allowed in (("Support", False), ("Finance", False), ("Catalogue", True)):
        client = Client()
        client.force_login(_member(role))
        response = client.post(url, {"action": "accept", ACTION_CHECKBOX_NAME: [text_change.pk]})
        text_change.refresh_from_db()
        assert (text_change.status == "accepted") is allowed, role
        if not allowed:
            assert response.status_code in (200, 302, 403)
    client.post(url, {"action": "dismiss", ACTION_CHECKBOX_NAME: [name_change.pk]})
    service.refresh_from_db()
    name_change.refresh_from_db()
    assert service.description == "Bots, no refill"
    assert name_change.status == "dismissed" and service.name != "Followers HQ"
    assert client.get(url).status_code == 200
