from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey
from api import spec
from orders.models import Order
from tests.factories import RouteFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_api_page_needs_login(client):
    response = client.get(reverse("api:page"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_key_is_created_shown_once_and_only_its_prefix_later(client, customer):
    client.force_login(customer)
    client.post(reverse("api:key_issue"))
    first = client.get(reverse("api:page")).content.decode()
    stored = ApiKey.objects.get(user=customer)
    start = first.index('id="new-api-key" readonly value="') + len('id="new-api-key" readonly value="')
    raw = first[start : start + 64]
    assert raw.startswith(stored.prefix)
    second = client.get(reverse("api:page")).content.decode()
    assert raw not in second and f"{stored.prefix}…" in second


def test_regenerate_and_revoke(client, customer):
    client.force_login(customer)
    client.post(reverse("api:key_issue"))
    old = ApiKey.objects.get(user=customer).digest
    client.post(reverse("api:key_issue"))
    assert ApiKey.objects.get(user=customer).digest != old
    client.post(reverse("api:key_revoke"))
    assert not ApiKey.objects.filter(user=customer).exists()


@pytest.mark.parametrize("name", ["api:key_issue", "api:key_revoke"])
def test_key_changes_are_post_only(client, customer, name):
    client.force_login(customer)
    assert client.get(reverse(name)).status_code == 405
    assert not ApiKey.objects.filter(user=customer).exists()


def test_key_changes_need_csrf(customer):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(customer)
    assert csrf_client.post(reverse("api:key_issue")).status_code == 403
    assert not ApiKey.objects.filter(user=customer).exists()


def test_documentation_lists_every_action_with_three_languages(client, customer):
    client.force_login(customer)
    body = client.get(reverse("api:page")).content.decode()
    for action in spec.ACTIONS:
        assert action.title in body
    assert body.count("curl -X POST") == len(spec.ACTIONS)
    assert body.count("curl_init(") == len(spec.ACTIONS)
    assert body.count("import requests") == len(spec.ACTIONS)
    for name in ("Custom Comments", "Subscriptions", "Web Traffic"):
        assert name in body


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()} if not all(k.isdigit() for k in value) else "by-id"
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_documented_examples_have_the_shape_of_real_replies(client, customer):
    """The docs are generated from api.spec; this keeps the examples true to the endpoint."""
    from accounts.services import api_key_issue
    from catalog.models import ServiceQuality
    from tests.api.conftest import fund

    fund(customer)
    key = api_key_issue(user=customer)
    service = RouteFactory(service=ServiceFactory(price=Decimal("0.9"), refill=True, cancel=True)).service
    # The example shows a measured service (before enough orders its figures are null).
    ServiceQuality.objects.create(
        service=service,
        finished=124,
        completed=120,
        started=124,
        start_p50=5700,
        delivered=124,
        per1000_p50=18900,
        computed_at=timezone.now(),
    )
    links = iter(range(100))

    def completed_order():
        reply = client.post(
            "/api/v2",
            {
                "key": key,
                "action": "add",
                "service": service.pk,
                "link": f"https://x.io/{next(links)}",
                "quantity": 100,
            },
        )
        order_id = json.loads(reply.content)["order"]
        Order.objects.filter(pk=order_id).update(
            status="Completed",
            state="sent",
            remains=0,
            completed_at=timezone.now(),
            provider=service.routes.get().upstream.provider,
        )
        return order_id

    refill_id = json.loads(
        client.post("/api/v2", {"key": key, "action": "refill", "order": completed_order()}).content
    )["refill"]
    for action in spec.ACTIONS:
        values = {
            "order": completed_order(),
            "orders": f"{completed_order()},0",
            "refill": refill_id,
            "refills": f"{refill_id},0",
            "service": service.pk,
            "link": f"https://x.io/{next(links)}",
            "quantity": 100,
        }
        params = {"key": key, "action": action.name}
        params.update({p.name: values[p.name] for p in action.params if p.required and p.name in values})
        if action.name == "cancel":
            params["orders"] = "0"
        reply = json.loads(client.post("/api/v2", params).content)
        assert _shape(reply) == _shape(action.example), (action.title, reply)
