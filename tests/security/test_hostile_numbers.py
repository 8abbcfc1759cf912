"""Numbers that Python's int() reads but a person does not write (`²`, `١`, `1_0`), and NUL
bytes or broken UTF-8, on every customer page, the public pages and every admin list: a
form error or an ignored filter, never a 500, and never taken as a number."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from django.contrib import admin
from django.urls import reverse

from orders.models import Order
from support.models import Ticket
from tests.factories import RouteFactory, ServiceFactory
from tests.security.test_sweep import WITHOUT_ARGS
from wallets.selectors import wallet_balance
from wallets.services import wallet_credit

pytestmark = pytest.mark.django_db

HOSTILE = ["²", "1²", "١", "١٠", "1_0", "\x00", "1\x00", "%ED%A0%80"]
PARAMS = ["service", "before", "after", "q", "order", "page", "status", "category", "type", "refill", "kind", "amount"]
PARAMS += ["customer", "action", "date_from", "date_to", "sort", "per_page", "checkout", "held", "p", "o", "e"]


def arabic_indic(number: int) -> str:
    return "".join(chr(0x660 + int(d)) for d in str(number))


def _query(value: str) -> str:
    # %ED%A0%80 stays percent-encoded (an encoded lone surrogate); the rest is encoded here.
    from urllib.parse import quote

    encoded = value if value.startswith("%") else quote(value)
    return "&".join(f"{name}={encoded}" for name in PARAMS)


@pytest.fixture
def funded(customer):
    wallet_credit(user=customer, amount=Decimal("100"), kind="deposit", idempotency_key=f"t:{uuid4().hex}")
    return customer


CUSTOMER_GET_PAGES = sorted(n for n in WITHOUT_ARGS if n not in {"api:endpoint", "api:endpoint_slash"})


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("name", CUSTOMER_GET_PAGES)
def test_customer_pages_survive_hostile_query_strings(client, funded, name, value):
    client.force_login(funded)
    response = client.get(f"{reverse(name)}?{_query(value)}")
    assert response.status_code < 500


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("path", ["/", "/services/", "/healthz", "/api/openapi.json"])
def test_public_pages_survive_hostile_query_strings(client, path, value):
    assert client.get(f"{path}?{_query(value)}").status_code < 500


def test_public_services_search_does_not_read_unicode_digits_as_an_id(client):
    service = ServiceFactory(name="Zebra followers")
    RouteFactory(service=service)
    assert client.get("/services/?q=²").status_code == 200
    page = client.get(f"/services/?q={arabic_indic(service.pk)}")
    assert page.status_code == 200 and "Zebra followers" not in page.content.decode()
    assert "Zebra followers" in client.get(f"/services/?q={service.pk}").content.decode()


def test_public_services_category_filter_refuses_unicode_digits(client):
    service = ServiceFactory(name="Zebra followers")
    RouteFactory(service=service)
    page = client.get(f"/services/?category={arabic_indic(service.category.pk)}")
    assert page.status_code == 200
    assert "category" in page.context["filter"].form.errors


def test_new_order_page_does_not_preselect_a_unicode_service_id(client, funded):
    service = RouteFactory(service=ServiceFactory()).service
    client.force_login(funded)
    assert client.get(f"{reverse('orders:new')}?service={service.pk}").context["selected_service"] == str(service.pk)
    for spelling in (arabic_indic(service.pk), "²", f"0_{service.pk}"):
        page = client.get(reverse("orders:new"), {"service": spelling})
        assert page.status_code == 200 and page.context["selected_service"] == ""


@pytest.mark.parametrize(
    "field, value",
    [
        ("quantity", "²"),
        ("quantity", "١٠٠"),
        ("quantity", "1_00"),
        ("quantity", "100\x00"),
        ("service", "SERVICE_ARABIC"),
        ("service", "SERVICE_UNDERSCORE"),
        ("link", "https://x.io/p\x00"),
        ("usernames", "alice\x00"),
    ],
)
def test_new_order_form_refuses_what_int_would_take_and_charges_nothing(client, funded, field, value):
    service = RouteFactory(service=ServiceFactory(min_quantity=10, max_quantity=1000)).service
    value = {"SERVICE_ARABIC": arabic_indic(service.pk), "SERVICE_UNDERSCORE": f"0_{service.pk}"}.get(value, value)
    client.force_login(funded)
    data = {"service": service.pk, "link": "https://x.io/p", "quantity": "100", field: value}
    page = client.post(reverse("orders:new"), data)
    assert page.status_code == 200 and page.context["form"].errors
    assert Order.objects.count() == 0 and wallet_balance(user=funded) == Decimal("100")


def test_mass_order_refuses_unicode_numbers_and_charges_nothing(client, funded):
    service = RouteFactory(service=ServiceFactory(min_quantity=10, max_quantity=1000)).service
    client.force_login(funded)
    lines = (
        f"{arabic_indic(service.pk)}|https://x.io/a|100\n{service.pk}|https://x.io/b|١٠٠\n{service.pk}|https://x.io/c|²"
    )
    client.post(reverse("orders:mass"), {"orders": lines})
    assert Order.objects.count() == 0 and wallet_balance(user=funded) == Decimal("100")
    results = client.get(reverse("orders:mass")).context["results"]
    assert [r["ok"] for r in results] == [False, False, False]


def test_ticket_form_refuses_unicode_order_numbers(client, funded):
    client.force_login(funded)
    data = {"subject": "s", "kind": "order", "order_action": "refill", "message": "m"}
    for ids in ("²", "١", "1_0", "1\x00"):
        assert client.post(reverse("support:new"), {**data, "order_ids": ids}).status_code == 400
    assert Ticket.objects.count() == 0


# --- The admin ---------------------------------------------------------------------------------------------
MODEL_ADMINS = sorted(
    (f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist", f"{m._meta.app_label}.{m._meta.model_name}")
    for m in admin.site._registry
)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("changelist, label", MODEL_ADMINS)
def test_admin_lists_survive_hostile_search_and_filters(client, staff, changelist, label, value):
    client.force_login(staff)
    url = reverse(changelist)
    assert client.get(f"{url}?{_query(value)}").status_code < 500
    for name in ("q", "before", "customer", "id__exact", "user__id__exact", "service__id__exact"):
        assert client.get(url, {name: value}).status_code < 500, name
    change = url.replace("/admin/", "/admin/", 1) + "²/change/"
    assert client.get(change).status_code < 500


def test_admin_order_search_and_filters_read_ascii_ids_only(client, staff, customer):
    service = RouteFactory(service=ServiceFactory()).service
    order = Order.objects.create(
        user=customer,
        service=service,
        link="https://x.io/a",
        quantity=100,
        charge=Decimal("0.1"),
        price_per_1000=Decimal("1"),
    )
    client.force_login(staff)
    url = reverse("admin:orders_order_changelist")

    def found(**params):
        response = client.get(url, params)
        assert response.status_code == 200
        return [row.pk for row in response.context["cl"].result_list]

    assert found(q=str(order.pk)) == [order.pk]
    assert found(q=f"00{order.pk}") == [order.pk]
    assert found(q=arabic_indic(order.pk)) == []
    assert found(q=f"0_{order.pk}") == []
    assert found(customer=str(customer.pk)) == [order.pk]
    assert found(customer=arabic_indic(customer.pk)) == []
    assert found(before=str(order.pk + 1)) == [order.pk]
    assert client.get(url, {"before": arabic_indic(order.pk + 1)}).status_code < 500


def test_admin_id_search_is_an_indexed_number_match():
    from django.db.models import Q

    sql = str(Order.objects.filter(Q(id__iexact="40") | Q(link__icontains="40")).query)
    assert '"orders_order"."id" = 40' in sql and "::text) = UPPER" not in sql
    assert "1 = 0" in str(Order.objects.filter(Q(id__iexact="١") | Q(link__icontains="x")).query)


@pytest.mark.parametrize("field", ["link", "usernames", "comments"])
def test_new_order_form_refuses_bytes_that_are_not_utf8(client, funded, field):
    service = RouteFactory(service=ServiceFactory(min_quantity=1, max_quantity=1000)).service
    client.force_login(funded)
    data = {"service": service.pk, "link": "https%3A%2F%2Fx.io%2Fp", "quantity": "100", field: "x%ED%A0%80"}
    form = "&".join(f"{k}={v}" for k, v in data.items())
    page = client.post(reverse("orders:new"), form, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 200 and field in page.context["form"].errors
    mass = f"orders={service.pk}%7Chttps%3A%2F%2Fx.io%2F%ED%A0%80%7C100"
    client.post(reverse("orders:mass"), mass, content_type="application/x-www-form-urlencoded")
    assert Order.objects.count() == 0 and wallet_balance(user=funded) == Decimal("100")
