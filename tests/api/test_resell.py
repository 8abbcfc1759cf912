"""A panel can resell a panel: our provider client buys from our own /api/v2.

Downstream customer → service D (routed to provider "ourselves", i.e. our own API with a
reseller's key) → the reseller's order on service U (routed to the simulator) → simulator.
Statuses and refunds flow back up through both levels.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.services import api_key_issue
from catalog.services import catalog_import_upstream, provider_sync
from kernel.money import refund_for_remains
from orders.models import Order
from orders.services import order_place, order_submit, order_sync_chunk
from providers.models import Provider, UpstreamService
from tests.api.conftest import fund
from tests.factories import UserFactory
from wallets.audit import ledger_audit
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db(transaction=True)


def sync_all() -> None:
    for order in Order.objects.filter(state="sent").exclude(status__in=["Completed", "Partial", "Canceled"]):
        order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])


def submit_all() -> None:
    for pk in Order.objects.filter(state="queued").order_by("pk").values_list("pk", flat=True):
        order_submit(order_id=pk)


def test_an_order_travels_through_two_panels_and_its_refund_flows_back(live_server, simulator, settings):
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    settings.API_RATE_LIMIT_PER_KEY = "100000/m"
    # Level 1: the simulator's services, sold by "us".
    sim_provider = Provider.objects.create(name="simulator", api_url=simulator.url, api_key="test-key")
    provider_sync(provider=sim_provider)
    upstream = UpstreamService.objects.get(provider=sim_provider, type="Default", external_id="1")
    (level1,) = catalog_import_upstream(upstream_ids=[upstream.pk])
    # Level 2: a reseller account on our own panel, used as a provider by "us" again.
    reseller = UserFactory(username="reseller")
    fund(reseller, "500")
    ourselves = Provider.objects.create(
        name="ourselves", api_url=f"{live_server.url}/api/v2", api_key=api_key_issue(user=reseller)
    )
    provider_sync(provider=ourselves)
    mirrored = UpstreamService.objects.get(provider=ourselves, external_id=str(level1.pk))
    assert mirrored.rate == level1.price  # the reseller buys at our selling price
    (level2,) = catalog_import_upstream(upstream_ids=[mirrored.pk])

    customer = UserFactory(username="downstream")
    fund(customer, "100")
    quantity = max(level1.min_quantity, 1000)
    order = order_place(
        user=customer,
        service_id=level2.pk,
        fields={"link": "https://instagram.com/p/resold", "quantity": str(quantity)},
    )
    submit_all()  # the downstream order goes to our API, which places the reseller's order…
    submit_all()  # …which goes to the simulator.
    order.refresh_from_db()
    inner = Order.objects.get(user=reseller)
    assert order.state == "sent" and order.provider == ourselves and order.provider_order_id == str(inner.pk)
    assert inner.state == "sent" and inner.provider == sim_provider
    assert simulator.add_count(1, "https://instagram.com/p/resold", quantity) == 1

    # The simulator delivers part of it.
    simulator.force_status(int(inner.provider_order_id), "Partial", remains=quantity // 4)
    sync_all()  # the reseller's order becomes Partial and is refunded…
    sync_all()  # …then the downstream order sees Partial through our API.
    inner.refresh_from_db()
    order.refresh_from_db()
    assert (inner.status, inner.remains) == ("Partial", quantity // 4)
    assert (order.status, order.remains) == ("Partial", quantity // 4)
    assert wallet_balance(user=reseller) == Decimal("500") - inner.charge + refund_for_remains(
        charge=inner.charge, remains=quantity // 4, quantity=quantity
    )
    assert wallet_balance(user=customer) == Decimal("100") - order.charge + refund_for_remains(
        charge=order.charge, remains=quantity // 4, quantity=quantity
    )
    # Syncing again moves no money, and the books balance.
    before = (wallet_balance(user=reseller), wallet_balance(user=customer))
    sync_all()
    assert (wallet_balance(user=reseller), wallet_balance(user=customer)) == before
    assert ledger_audit() == []
