"""Real clients over real HTTP: one that behaves like the standard PHP example (form POST,
an old Internet Explorer user agent, following redirects) and one that sends JSON."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from accounts.services import api_key_issue
from orders.models import Order
from tests.api.conftest import fund
from tests.factories import RouteFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

OLD_IE = "Mozilla/4.0 (compatible; MSIE 5.01; Windows NT 5.0)"


class PhpLikeClient:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key

    def call(self, **params):
        response = requests.post(
            self.url, data={"key": self.key, **params}, headers={"User-Agent": OLD_IE}, allow_redirects=True, timeout=10
        )
        assert response.status_code == 200 and response.history == []
        return json.loads(response.text)


class JsonClient(PhpLikeClient):
    def call(self, **params):
        response = requests.post(self.url, json={"key": self.key, **params}, timeout=10)
        assert response.status_code == 200
        return response.json()


@pytest.fixture(params=["php", "json"])
def api_client(request, live_server):
    user = UserFactory(username="reseller")
    fund(user)
    key = api_key_issue(user=user)
    cls = PhpLikeClient if request.param == "php" else JsonClient
    # The PHP example is often configured with a trailing slash.
    return cls(live_server.url + ("/api/v2/" if request.param == "php" else "/api/v2"), key)


def test_every_action_works_for_both_clients(api_client):
    service = RouteFactory(
        service=ServiceFactory(price=Decimal("1"), min_quantity=10, max_quantity=1000, refill=True, cancel=True)
    ).service
    services = api_client.call(action="services")
    assert services[0]["service"] == service.pk and services[0]["rate"] == "1"
    order = api_client.call(action="add", service=service.pk, link="https://x.io/p", quantity=100)["order"]
    assert api_client.call(action="status", order=order)["status"] == "Pending"
    assert api_client.call(action="status", orders=f"{order},0")[str(order)]["charge"] == "0.10000"
    Order.objects.filter(pk=order).update(
        status="Completed",
        state="sent",
        remains=0,
        completed_at=timezone.now(),
        provider=service.routes.get().upstream.provider,
    )
    refill = api_client.call(action="refill", order=order)
    assert "refill" in refill, refill
    assert api_client.call(action="refill_status", refill=refill["refill"]) == {"status": "Pending"}
    assert api_client.call(action="refill", orders=f"{order},0")[1] == {
        "order": 0,
        "refill": {"error": "Incorrect order ID"},
    }
    assert api_client.call(action="refill_status", refills=f"{refill['refill']}")[0]["status"] == "Pending"
    assert api_client.call(action="cancel", orders="0") == [{"order": 0, "cancel": {"error": "Incorrect order ID"}}]
    assert api_client.call(action="balance") == {"balance": "99.90000", "currency": "USD"}


def test_services_with_measured_quality_still_parse_for_both_clients_and_a_panel(api_client, settings):
    """The `services` reply gains avg_start, avg_time, completion_rate and sample; every old
    field keeps its value and type, and a client that does not know the new ones (our own
    provider client, as another panel reselling this one) reads the list as before."""
    from catalog.models import ServiceQuality
    from providers.client import ProviderClient

    settings.QUALITY_MIN_SAMPLE = 5
    measured = RouteFactory(service=ServiceFactory(price=Decimal("2"), min_quantity=10, max_quantity=500)).service
    unmeasured = RouteFactory(service=ServiceFactory(price=Decimal("1"), min_quantity=10, max_quantity=1000)).service
    ServiceQuality.objects.create(
        service=measured,
        finished=40,
        completed=38,
        partial=1,
        canceled=1,
        started=39,
        start_p50=3600,
        start_p90=7200,
        delivered=39,
        per1000_p50=1800,
        per1000_p90=3600,
        computed_at=timezone.now(),
    )
    services = {s["service"]: s for s in api_client.call(action="services")}
    old = {"service", "name", "type", "category", "rate", "min", "max", "refill", "cancel", "dripfeed"}
    for item in services.values():
        assert old <= set(item) and isinstance(item["min"], str) and isinstance(item["refill"], bool)
    assert {k: services[measured.pk][k] for k in ("avg_start", "avg_time", "completion_rate", "sample")} == {
        "avg_start": "60",
        "avg_time": "90",
        "completion_rate": "95.0",
        "sample": "40",
    }
    assert services[unmeasured.pk]["avg_time"] is None and services[unmeasured.pk]["sample"] == "0"
    # A panel buying from this one parses the same list.
    reseller = ProviderClient(url=api_client.url, key=api_client.key, allow_private_addresses=True)
    parsed = {int(s.service_id): s for s in reseller.services()}
    assert parsed[measured.pk].rate == Decimal("2") and parsed[measured.pk].max_quantity == 500
    assert parsed[unmeasured.pk].min_quantity == 10
