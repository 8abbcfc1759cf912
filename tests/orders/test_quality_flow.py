"""Quality figures follow orders through the real pipeline: finishing, failing, refills,
the ETA promised at placing and shown on the order page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from catalog.models import RouteDay, RouteQuality, ServiceQuality
from catalog.quality import quality_refresh
from catalog.tasks import quality_refresh_task
from orders.models import Order, Refill, State
from orders.services import order_submit, order_sync_chunk, refill_request, refill_submit, refill_sync_chunk
from tests.orders.factories import fund

pytestmark = pytest.mark.django_db


def test_an_order_finishing_reaches_the_figures_within_a_minute(customer, shop, place):
    # Beat runs the refresh every minute; it reads the row the finishing order wrote.
    assert settings.CELERY_BEAT_SCHEDULE["catalog-quality-refresh"]["schedule"] <= 60
    service = shop.service()
    fund(customer, "100")
    order = place(customer, service, link="https://instagram.com/p/q", quantity="1000")
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    shop.simulator.force_status(int(order.provider_order_id), "In progress")
    order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.started_at is not None
    shop.simulator.force_status(int(order.provider_order_id), "Completed", remains=0)
    order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])
    order.refresh_from_db()
    assert (order.status, order.state) == ("Completed", State.SENT)
    row = RouteDay.objects.get(route=order.route)
    assert (row.completed, row.accepted, sum(row.start_hist), sum(row.per1000_hist)) == (1, 1, 1, 1)
    quality_refresh_task()
    figures = ServiceQuality.objects.get(service=service)
    assert figures.finished == 1 and figures.completed_share == Decimal(100)


def test_a_provider_that_does_not_answer_counts_as_a_failure(customer, shop, place):
    service = shop.service()
    fund(customer, "100")
    order = place(customer, service, link="https://instagram.com/p/f", quantity="1000")
    shop.simulator.set_fault("http429", action="add")
    assert order_submit(order_id=order.pk) == "retry"
    quality_refresh()
    figures = RouteQuality.objects.get(route=service.routes.get())
    assert (figures.failures, figures.accepted, figures.failure_share) == (1, 0, 100)
    assert Order.objects.get(pk=order.pk).state == State.QUEUED


def _finished_order(customer, shop, place, service, link):
    order = place(customer, service, link=link, quantity="1000")
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    shop.simulator.force_status(int(order.provider_order_id), "Completed", remains=0)
    order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])
    order.refresh_from_db()
    return order


def test_refill_success_rate_counts_refills_that_ended(customer, shop, place):
    service = shop.service(refill=True)
    fund(customer, "100")
    orders = [_finished_order(customer, shop, place, service, f"https://instagram.com/p/r{i}") for i in range(2)]
    for order, outcome in zip(orders, ("Completed", "Rejected"), strict=True):
        refill = refill_request(user=customer, order_id=order.pk)
        refill_submit(refill_id=refill.pk)
        refill.refresh_from_db()
        shop.simulator.force_refill_status(int(refill.provider_refill_id), outcome)
        refill_sync_chunk(provider_id=order.provider_id, refill_ids=[refill.pk])
        assert Refill.objects.get(pk=refill.pk).status == outcome
    quality_refresh()
    figures = ServiceQuality.objects.get(service=service)
    assert (figures.refills, figures.refills_completed, figures.refill_share) == (2, 1, 50)


def test_the_eta_is_promised_at_placing_and_compared_on_the_order_page(client, customer, shop, place, settings):
    settings.QUALITY_MIN_SAMPLE = 2
    service = shop.service()
    fund(customer, "100")
    for i in range(2):
        _finished_order(customer, shop, place, service, f"https://instagram.com/p/e{i}")
    quality_refresh()
    order = place(customer, service, link="https://instagram.com/p/eta", quantity="2000")
    assert order.eta_sample == 2 and order.eta_start_seconds is not None
    assert order.eta_complete_seconds >= order.eta_start_seconds
    client.force_login(customer)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'id="order-eta"' in page and "from 2 orders" in page and "Not started yet" in page
    Order.objects.filter(pk=order.pk).update(started_at=order.created_at + timedelta(hours=5))
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "Started after 5 h" in page and "later than expected" in page


def test_new_order_and_services_pages_show_the_measured_figures(client, customer, shop, place, settings):
    settings.QUALITY_MIN_SAMPLE = 2
    service = shop.service()
    fund(customer, "100")
    for i in range(2):
        _finished_order(customer, shop, place, service, f"https://instagram.com/p/s{i}")
    quality_refresh()
    client.force_login(customer)
    page = client.get("/orders/new/").content.decode()
    assert 'id="service-quality"' in page and '"measured": true' in page and '"sample": 2' in page
    page = client.get("/services/").content.decode()
    assert "100.0% completed · 2 orders" in page
