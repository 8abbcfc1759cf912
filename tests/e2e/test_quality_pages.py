"""Measured quality and the ETA as a customer sees them, at desktop and phone widths."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.utils import timezone

from catalog.models import ServiceQuality
from orders.models import Order
from tests.factories import PASSWORD, RouteFactory, ServiceFactory, UserFactory
from tests.orders.factories import fund

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_services_new_order_and_order_pages_show_measured_figures_and_the_eta(visitors: Any) -> None:
    service = RouteFactory(
        service=ServiceFactory(
            name="Instagram Followers [Real, refill 30 days]",
            description="Start: 0-24 hours\nSpeed: 5K/Day",
            price=Decimal("1.3"),
            min_quantity=10,
            max_quantity=100000,
        )
    ).service
    ServiceQuality.objects.create(
        service=service,
        finished=124,
        completed=118,
        partial=4,
        canceled=2,
        started=122,
        start_p50=2 * 3600,
        start_p90=5 * 3600,
        delivered=120,
        per1000_p50=2 * 3600,
        per1000_p90=4 * 3600,
        computed_at=timezone.now(),
    )
    customer = UserFactory(username="quinn", email="quinn@example.com")
    EmailAddress.objects.create(user=customer, email=customer.email, verified=True, primary=True)
    fund(customer, "100")
    order = Order.objects.create(
        user=customer,
        service=service,
        quantity=2000,
        price_per_1000=Decimal("1.3"),
        charge=Decimal("2.6"),
        link="https://instagram.com/quinn",
        status="Completed",
        state="sent",
        remains=0,
        eta_start_seconds=2 * 3600,
        eta_complete_seconds=6 * 3600,
        eta_sample=122,
    )
    Order.objects.filter(pk=order.pk).update(
        started_at=order.created_at + timedelta(minutes=50), completed_at=order.created_at + timedelta(hours=7)
    )

    quinn = visitors("quinn")
    quinn.go("/accounts/login/")
    quinn.page.fill("[name=login]", "quinn")
    quinn.page.fill("[name=password]", PASSWORD)
    quinn.page.get_by_role("button", name="Sign In").click()
    quinn.page.wait_for_load_state()

    quinn.go("/services/")
    assert "95.2% completed · 124 orders" in quinn.page.locator("#services-table").inner_text()
    quinn.shoot("quality-services")
    # The star posts the page's one favourite form (its token) to its own row's address.
    with quinn.page.expect_navigation():
        quinn.page.locator(f"#service-{service.pk} .fav-btn").click()
    star = quinn.page.locator(f'#group-favourites [data-favourite="{service.pk}"]')
    assert star.get_attribute("aria-pressed") == "true"
    assert list(customer.favourite_services.values_list("service_id", flat=True)) == [service.pk]

    quinn.go(f"/orders/new/?service={service.pk}")
    quinn.page.fill("#id_quantity", "3000")
    text = quinn.page.locator("#eta-measured").inner_text()
    assert "Usually starts within 2 h, completes in ~8 h — from 122 orders" in text, text
    quinn.page.fill("#id_quantity", "1000")
    assert "completes in ~4 h" in quinn.page.locator("#eta-measured").inner_text()
    quinn.shoot("quality-new-order")

    quinn.go(f"/orders/{order.pk}/")
    eta = quinn.page.locator("#order-eta").inner_text()
    assert "starts within 2 h, completes in ~6 h — from 122 orders" in eta, eta
    assert "Started after 50 min" in eta and "finished after 7 h" in eta and "later than expected" in eta
    quinn.shoot("quality-order-detail")
    assert quinn.errors == []
