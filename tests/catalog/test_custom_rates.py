"""Per-customer custom rates: one customer's own rate (or markup over cost) for a service,
before their discount, shown and charged everywhere (services page, new-order page, API
`services` and `add`), never below cost."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from catalog.models import CustomRate, Service
from catalog.pricing import price_for_customer
from catalog.rates import custom_rates_set
from catalog.services import CatalogError
from orders.models import Order
from tests.api.conftest import fund
from tests.factories import RouteFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db: Any) -> Service:
    # cost 1.000000, price 1.300000
    return RouteFactory(service=ServiceFactory(name="Followers", min_quantity=100)).service


@pytest.fixture
def staff_client(staff: Any, settings: Any) -> Client:
    settings.STAFF_REQUIRE_MFA = False
    client = Client()
    client.force_login(staff)
    return client


def test_the_rule_custom_before_discount_and_never_below_cost() -> None:
    base = {"price": D("1.3"), "discount_percent": D("10"), "cost": D("1")}
    assert price_for_customer(**base) == D("1.17")
    assert price_for_customer(**base, custom_rate=D("1.1")) == D("1.1")
    assert price_for_customer(**base, custom_markup=D("5")) == D("1.05")
    # the cost rose above the customer's rate: the usual price, never a loss
    assert price_for_customer(**base, custom_rate=D("0.9")) == D("1.17")


def test_api_services_and_add_use_the_customer_rate(
    service: Service, customer: Any, other_customer: Any, staff: Any, client: Client
) -> None:
    from accounts.services import api_key_issue

    fund(customer)
    fund(other_customer)
    key, other_key = api_key_issue(user=customer), api_key_issue(user=other_customer)
    custom_rates_set(user=customer, services=[service], rate=D("1.1"), actor=staff)

    def rate_for(k: str) -> str:
        rows = client.post("/api/v2", {"key": k, "action": "services"}).json()
        return next(r["rate"] for r in rows if r["service"] == service.pk)

    assert rate_for(key) == "1.1"
    assert rate_for(other_key) == "1.3"
    answer = client.post(
        "/api/v2", {"key": key, "action": "add", "service": service.pk, "link": "https://x.example/a", "quantity": 1000}
    ).json()
    order = Order.objects.get(pk=answer["order"])
    assert order.charge == D("1.1") and order.price_per_1000 == D("1.1")


def test_pages_show_the_customer_rate(service: Service, customer: Any, staff: Any) -> None:
    custom_rates_set(user=customer, services=[service], markup_percent=D("12"), actor=staff)
    client = Client()
    client.force_login(customer)
    page = client.get(reverse("catalog:services")).content.decode()
    assert "1.12" in page and "1.3 " not in page
    order_page = client.get(reverse("orders:new")).content.decode()
    assert '"rate": "1.120000"' in order_page or "1.12" in order_page


def test_placing_never_sells_below_a_cost_that_rose(service: Service, customer: Any, staff: Any) -> None:
    from orders.services import order_place

    fund(customer)
    custom_rates_set(user=customer, services=[service], rate=D("1.1"), actor=staff)
    Service.objects.filter(pk=service.pk).update(cost=D("1.2"), price=D("1.56"))
    order = order_place(
        user=customer, service_id=service.pk, fields={"link": "https://x.example/b", "quantity": "1000"}
    )
    assert order.charge == D("1.56")


def test_a_rate_below_cost_is_refused_in_the_form_and_the_service(
    service: Service, customer: Any, staff: Any, staff_client: Client
) -> None:
    with pytest.raises(CatalogError):
        custom_rates_set(user=customer, services=[service], rate=D("0.5"), actor=staff)
    with pytest.raises(CatalogError):
        custom_rates_set(user=customer, services=[service], markup_percent=D("-5"), actor=staff)
    response = staff_client.post(
        reverse("admin:catalog_customrate_add"),
        {"user": customer.pk, "service": service.pk, "rate": "0.5", "markup_percent": "", "note": ""},
    )
    assert response.status_code == 200 and "below its cost" in response.content.decode()
    assert not CustomRate.objects.exists()
    response = staff_client.post(
        reverse("admin:catalog_customrate_add"),
        {"user": customer.pk, "service": service.pk, "rate": "1.05", "markup_percent": "", "note": "VIP"},
    )
    assert response.status_code == 302
    assert CustomRate.objects.get().created_by == staff


def test_bulk_action_sets_one_customer_rate_all_or_none(service: Service, customer: Any, staff_client: Client) -> None:
    cheap = ServiceFactory(cost=D("0.1"), price=D("0.2"))
    url = reverse("admin:catalog_service_changelist")
    post = {
        "action": "set_custom_rate",
        ACTION_CHECKBOX_NAME: [service.pk, cheap.pk],
        "apply": "1",
        "customer": "customer",
        "rate": "0.5",
    }
    response = staff_client.post(url, post)
    assert response.status_code == 200 and "below its cost" in response.content.decode()
    assert not CustomRate.objects.exists()
    response = staff_client.post(url, {**post, "rate": "", "markup_percent": "10"})
    assert response.status_code == 302
    assert set(CustomRate.objects.values_list("service_id", "markup_percent")) == {
        (service.pk, D("10.00")),
        (cheap.pk, D("10.00")),
    }


def test_only_roles_with_the_permission_set_rates(service: Service, customer: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    for role, allowed in (("Catalogue", True), ("Owner", True), ("Support", False), ("Finance", False)):
        member = UserFactory(username=f"rates-{role}", is_staff=True)
        member.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(member)
        response = client.post(
            reverse("admin:catalog_customrate_add"),
            {"user": customer.pk, "service": service.pk, "rate": "1.2", "markup_percent": "", "note": ""},
        )
        assert (response.status_code == 302) is allowed, role
        CustomRate.objects.all().delete()
