"""A security sweep over every customer URL: ownership, login, CSRF, staff-only pages,
mass assignment and hostile input. URLs are enumerated from the URL conf, so a new page
is covered (or this test fails until it is mapped)."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from orders.models import Order, Refill
from support.models import Ticket
from support.services import ticket_open
from tests.factories import RouteFactory, ServiceFactory
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance
from wallets.services import wallet_credit

pytestmark = pytest.mark.django_db

CUSTOMER_APPS = ("orders", "wallets", "support", "accounts", "api")
# Public or machine endpoints: no login, no CSRF (each has its own authentication).
PUBLIC = {
    "wallets:referral",
    "wallets:stripe_webhook",
    "wallets:webhook",
    "api:endpoint",
    "api:endpoint_slash",
    "api:openapi",
}
CSRF_EXEMPT = {"wallets:stripe_webhook", "wallets:webhook", "api:endpoint", "api:endpoint_slash"}


def _patterns(resolver: URLResolver, namespace: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            ns = item.namespace or namespace
            found += _patterns(item, ns)
        elif item.name and namespace in CUSTOMER_APPS:
            found.append((f"{namespace}:{item.name}", item))
    return found


PATTERNS = _patterns(get_resolver())
WITH_PK = sorted(name for name, p in PATTERNS if "pk" in p.pattern.converters)
WITHOUT_ARGS = sorted(name for name, p in PATTERNS if not p.pattern.converters)
# Per-gateway URLs, swept with the manual transfer (on by default).
WITH_GATEWAY = sorted(name for name, p in PATTERNS if set(p.pattern.converters) == {"gateway"})


def fund(user, amount="100"):
    wallet_credit(user=user, amount=Decimal(amount), kind="deposit", idempotency_key=f"t:{uuid4().hex}")


@pytest.fixture
def owned(customer):
    """One object of each customer-owned kind, belonging to `customer`."""
    fund(customer)
    service = RouteFactory(service=ServiceFactory(refill=True, cancel=True, min_quantity=10, max_quantity=1000)).service
    order = Order.objects.create(
        user=customer,
        service=service,
        link="https://x.io/mine",
        quantity=100,
        charge=Decimal("0.13"),
        price_per_1000=Decimal("1.3"),
        status="Completed",
        state="sent",
        remains=0,
        completed_at=timezone.now(),
        provider=service.routes.get().upstream.provider,
        provider_order_id="p1",
    )
    refill = Refill.objects.create(order=order, user=customer, provider=order.provider)
    payment = Payment.objects.create(
        user=customer, gateway="manual", amount=Decimal("10"), currency="USD", status="pending"
    )
    ticket = ticket_open(user=customer, subject="mine", kind="other", body="hello")
    return {"orders": order.pk, "refill": refill.pk, "wallets": payment.pk, "support": ticket.pk}


def _url_for(name, owned):
    if name in WITH_GATEWAY:
        return reverse(name, kwargs={"gateway": "manual"})
    return reverse(name, kwargs={"pk": owned[name.split(":")[0]]})


def _state(user):
    return (
        wallet_balance(user=user),
        Entry.objects.count(),
        list(Order.objects.order_by("pk").values_list("pk", "status", "state")),
        Refill.objects.count(),
        list(Payment.objects.order_by("pk").values_list("pk", "status")),
        list(Ticket.objects.order_by("pk").values_list("pk", "status")),
    )


def test_every_customer_object_url_is_mapped():
    assert WITH_PK, "no object URLs found: the enumeration is broken"
    assert WITH_GATEWAY == ["wallets:deposit", "wallets:webhook"]
    mapped = set(WITH_PK) | set(WITHOUT_ARGS) | set(WITH_GATEWAY)
    assert {name for name, _ in PATTERNS} - mapped <= {"wallets:referral"}
    assert {name.split(":")[0] for name in WITH_PK} <= {"orders", "wallets", "support"}


@pytest.mark.parametrize("name", WITH_PK)
def test_another_customer_gets_404_and_changes_nothing(client, owned, customer, other_customer, name):
    fund(other_customer)
    client.force_login(other_customer)
    url = _url_for(name, owned)
    before = _state(customer)
    codes = {client.get(url).status_code, client.post(url, {"message": "x", "reason": "x"}).status_code}
    # 405 only for the method the view does not take; the one it takes answers 404.
    assert codes in ({404}, {404, 405}), codes
    assert _state(customer) == before


@pytest.mark.parametrize("name", [n for n in WITHOUT_ARGS + WITH_PK + WITH_GATEWAY if n not in PUBLIC])
def test_customer_pages_need_login(client, owned, name):
    url = reverse(name) if name in WITHOUT_ARGS else _url_for(name, owned)
    response = client.get(url)
    assert response.status_code in {302, 405}, (name, response.status_code)
    if response.status_code == 302:
        assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("name", [n for n in WITHOUT_ARGS + WITH_PK + WITH_GATEWAY if n not in CSRF_EXEMPT])
def test_every_post_needs_a_csrf_token(owned, customer, name):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(customer)
    url = reverse(name) if name in WITHOUT_ARGS else _url_for(name, owned)
    before = _state(customer)
    assert csrf_client.post(url, {"amount": "5", "reference": "r", "message": "m", "subject": "s"}).status_code == 403
    assert _state(customer) == before


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/orders/order/",
        "/admin/wallets/wallet/",
        "/admin/wallets/payment/",
        "/admin/providers/provider/",
        "/admin/catalog/service/",
        "/admin/support/ticket/",
        "/admin/accounts/user/",
    ],
)
def test_staff_pages_refuse_customers(client, customer, url):
    client.force_login(customer)
    response = client.get(url)
    assert response.status_code == 403 and "The admin is for staff." in response.content.decode()


def test_new_order_ignores_client_sent_price_status_and_owner(client, customer, other_customer):
    fund(customer)
    service = RouteFactory(service=ServiceFactory(price=Decimal("2"), min_quantity=10, max_quantity=1000)).service
    client.force_login(customer)
    client.post(
        reverse("orders:new"),
        {
            "service": service.pk,
            "link": "https://x.io/p",
            "quantity": "100",
            "charge": "0",
            "price": "0",
            "price_per_1000": "0",
            "status": "Completed",
            "state": "sent",
            "user": other_customer.pk,
            "remains": "0",
        },
    )
    order = Order.objects.get()
    assert (order.user, order.charge, order.status, order.state) == (customer, Decimal("0.20000"), "Pending", "queued")


def test_account_and_ticket_forms_ignore_privileged_fields(client, customer, other_customer):
    client.force_login(customer)
    client.post(
        reverse("accounts:timezone"),
        {"timezone": "Europe/Paris", "is_staff": "on", "is_superuser": "on", "discount_percent": "100"},
    )
    customer.refresh_from_db()
    assert (customer.is_staff, customer.is_superuser, customer.discount_percent) == (False, False, Decimal("0"))
    client.post(
        reverse("support:new"),
        {"subject": "s", "kind": "other", "message": "m", "user": other_customer.pk, "status": "closed"},
    )
    ticket = Ticket.objects.get()
    assert ticket.user == customer and ticket.status != "closed"


def test_deposit_form_cannot_mark_itself_paid(client, customer):
    client.force_login(customer)
    client.post(reverse("wallets:deposit_manual"), {"amount": "10", "reference": "r1", "status": "paid", "user": 1})
    payment = Payment.objects.get()
    assert payment.status == "pending" and wallet_balance(user=customer) == 0


@pytest.mark.parametrize(
    "quantity, link",
    [
        ("-5", "https://x.io/p"),
        ("0", "https://x.io/p"),
        ("1.5", "https://x.io/p"),
        ("1e9", "https://x.io/p"),
        ("99999999999999999999999", "https://x.io/p"),
        ("100", "javascript:alert(1)"),
        ("100", "https://x.io/" + "a" * 5000),
        ("100", "ftp://x.io/p"),
        ("100", ""),
        # What int() reads (or isdigit() passes) but a person does not write.
        ("²", "https://x.io/p"),
        ("1²", "https://x.io/p"),
        ("١٠٠", "https://x.io/p"),
        ("１００", "https://x.io/p"),
        ("1_00", "https://x.io/p"),
        ("100\x00", "https://x.io/p"),
        ("100", "https://x.io/p\x00"),
    ],
)
def test_hostile_quantities_and_links_get_errors_and_change_nothing(client, customer, quantity, link):
    from accounts.services import api_key_issue

    fund(customer)
    key = api_key_issue(user=customer)
    service = RouteFactory(service=ServiceFactory(min_quantity=10, max_quantity=1000)).service
    before = _state(customer)
    reply = client.post(
        "/api/v2", {"key": key, "action": "add", "service": service.pk, "link": link, "quantity": quantity}
    )
    assert reply.status_code == 200 and "error" in reply.json()
    client.force_login(customer)
    page = client.post(reverse("orders:new"), {"service": service.pk, "link": link, "quantity": quantity})
    assert page.status_code == 200  # the form again, with its errors
    assert _state(customer) == before


HOSTILE_ANONYMOUS = [
    ("get", "/services/?q=²&category=١&page=²", None, None),
    ("get", "/api/v2?key=x&action=status&orders=²,١,1_0", None, None),
    ("post", "/api/v2", '{"key":"\\ud800","action":"balance"}', "application/json"),
    ("post", "/api/v2", "[" * 20000 + "]" * 20000, "application/json"),
    ("post", "/api/v2", "key=%00&action=add&usernames=a%00b", "application/x-www-form-urlencoded"),
    ("post", "/api/v2", "key=%ED%A0%80&action=balance", "application/x-www-form-urlencoded"),
    ("get", "/tickets/new/?order=²", None, None),
    ("get", "/orders/?before=²&q=²", None, None),
]


def test_hostile_anonymous_requests_never_500_nor_mail_staff(client, settings):
    from django.core import mail

    settings.ADMINS = [("Staff", "staff@example.com")]
    client.raise_request_exception = False
    mail.outbox.clear()
    for method, url, data, content_type in HOSTILE_ANONYMOUS:
        response = client.get(url) if method == "get" else client.post(url, data, content_type=content_type)
        assert response.status_code < 500, url
    assert mail.outbox == []
