"""Every customer page, in one list, with the data that makes each one show something.

`seed()` makes a customer with orders of several types and statuses (a Partial with its
refund, a drip-feed half done, a subscription, a package), payments, a refill and an
answered ticket. `PAGES` names each page and builds its URL from what was seeded; the
browser tests visit them all (tests/e2e/test_every_page.py), and the same list writes the
screenshots in docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone

from orders.models import Order, Refill, RefillStatus, RequestState, State, Status
from support.services import ticket_open, ticket_reply_staff
from tests.factories import CategoryFactory, ProviderFactory, ServiceFactory, UserFactory
from tests.orders.factories import fund, order_booked, order_finished
from wallets.models import Payment


@dataclass
class Seeded:
    customer: Any
    services: dict[str, Any] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    payment: Payment | None = None
    ticket: Any = None


def seed() -> Seeded:
    """A customer with a little of everything, and a catalogue with every kind of price."""
    customer = UserFactory(username="maria", email="maria@example.com")
    staff = UserFactory(username="helpdesk", email="helpdesk@example.com", is_staff=True)
    provider = ProviderFactory(name="upstream")
    instagram = CategoryFactory(name="Instagram")
    tiktok = CategoryFactory(name="TikTok")
    youtube = CategoryFactory(name="YouTube")
    long_name = "Instagram Followers [Refill 30D] [Max 50K] [Start 0-1 Hr] [Speed 5K/Day] ♻️ Real-looking accounts"
    services = {
        "followers": ServiceFactory(
            category=instagram,
            name=long_name,
            price=Decimal("2.134560"),
            min_quantity=10,
            max_quantity=50000,
            refill=True,
            cancel=True,
            dripfeed=True,
            description="Real-looking followers, start 0-1 h. Refill for 30 days.",
        ),
        "likes": ServiceFactory(
            category=instagram, name="Instagram Likes", price=Decimal("0.053300"), min_quantity=50, max_quantity=100000
        ),
        "package": ServiceFactory(
            category=instagram, name="Instagram Verified Badge Package", type="Package", price=Decimal("18.876000")
        ),
        "comments": ServiceFactory(
            category=instagram, name="Instagram Custom Comments", type="Custom Comments", price=Decimal("10.000000")
        ),
        "subscription": ServiceFactory(
            category=instagram,
            name="Instagram Auto Likes (subscription)",
            type="Subscriptions",
            price=Decimal("1.200000"),
            min_quantity=100,
            max_quantity=5000,
        ),
        "tiktok": ServiceFactory(category=tiktok, name="TikTok Views", price=Decimal("0.004100"), max_quantity=10**7),
        "youtube": ServiceFactory(category=youtube, name="YouTube Watch Time 4000 Hours", price=Decimal("35.500000")),
    }
    fund(customer, "96.96294")
    orders: dict[str, Order] = {}

    completed = order_booked(customer, services["followers"], charge="2.13456", quantity=1000)
    Order.objects.filter(pk=completed.pk).update(
        link="https://www.instagram.com/maria.designs/",
        state=State.SENT,
        provider=provider,
        completed_at=timezone.now(),
    )
    order_finished(completed, Status.COMPLETED, remains=0)
    orders["completed"] = completed

    partial = order_booked(customer, services["likes"], charge="0.26650", quantity=5000)
    Order.objects.filter(pk=partial.pk).update(
        link="https://www.instagram.com/p/C9xYz12AbCd/", state=State.SENT, provider=provider, start_count=120
    )
    order_finished(partial, Status.PARTIAL, remains=1200, refund="0.06396")
    orders["partial"] = partial

    canceled = order_booked(customer, services["tiktok"], charge="0.41000", quantity=100000)
    Order.objects.filter(pk=canceled.pk).update(
        link="https://www.tiktok.com/@maria/video/7312345678901234567",
        state=State.CANCELED,
        customer_note="The provider could not start this order.",
    )
    order_finished(canceled, Status.CANCELED, remains=100000, refund="0.41000")
    orders["canceled"] = canceled

    drip = order_booked(customer, services["followers"], charge="10.67280", quantity=5000)
    Order.objects.filter(pk=drip.pk).update(
        link="https://www.instagram.com/maria.designs/",
        runs=5,
        interval=60,
        state=State.SENT,
        provider=provider,
        status=Status.IN_PROGRESS,
        remains=3000,
        start_count=1500,
    )
    orders["dripfeed"] = drip

    sub = order_booked(customer, services["subscription"], charge="6.00000", quantity=5000)
    Order.objects.filter(pk=sub.pk).update(
        link="",
        service_type="Subscriptions",
        billing="per_1000_per_post",
        fields={"username": "maria.designs", "min": 100, "max": 1000, "posts": 5, "delay": 0},
        state=State.SENT,
        provider=provider,
        status=Status.IN_PROGRESS,
        provider_status="Active",
    )
    orders["subscription"] = sub

    package = order_booked(customer, services["package"], charge="18.87600", quantity=1)
    Order.objects.filter(pk=package.pk).update(
        link="https://www.instagram.com/maria.designs/", service_type="Package", billing="per_package"
    )
    orders["pending"] = package

    Refill.objects.create(
        order=completed,
        user=customer,
        provider=provider,
        state=RequestState.SENT,
        status=RefillStatus.IN_PROGRESS,
        provider_refill_id="r-1",
    )
    payment = Payment.objects.create(
        user=customer, gateway="manual", amount=Decimal("100.00000"), currency="USD", status=Payment.Status.PAID
    )
    Payment.objects.create(
        user=customer, gateway="manual", amount=Decimal("25.50000"), currency="USD", status=Payment.Status.PENDING
    )
    ticket = ticket_open(
        user=customer,
        subject="Order stuck at partial",
        kind="order",
        order_action="refill",
        order_ids=[partial.pk],
        body="Hello, my likes order stopped at 3800. Can you refill it?",
    )
    ticket_reply_staff(
        ticket=ticket,
        staff=staff,
        body="We asked the provider to refill it; it should finish within 24 hours.",
        ticket_url="http://testserver/",
    )
    for kept in orders.values():
        kept.refresh_from_db()
    return Seeded(customer=customer, services=services, orders=orders, payment=payment, ticket=ticket)


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[Seeded], str]
    logged_in: bool = True
    status: int = 200


def _fixed(name: str, *args: Any, query: str = "") -> Callable[[Seeded], str]:
    return lambda seeded: reverse(name, args=args) + query


PAGES: tuple[Page, ...] = (
    # Visitors
    Page("home-public", _fixed("home"), logged_in=False),
    Page("services-public", _fixed("catalog:services"), logged_in=False),
    Page("login", _fixed("account_login"), logged_in=False),
    Page("signup", _fixed("account_signup"), logged_in=False),
    Page("password-reset", _fixed("account_reset_password"), logged_in=False),
    Page("not-found", lambda s: "/no-such-page/", logged_in=False, status=404),
    # Customers
    Page("new-order", _fixed("orders:new")),
    Page("new-order-service", lambda s: reverse("orders:new") + f"?service={s.services['subscription'].pk}"),
    Page("mass-order", _fixed("orders:mass")),
    Page("orders", _fixed("orders:list")),
    Page("order-completed", lambda s: reverse("orders:detail", args=[s.orders["completed"].pk])),
    Page("order-partial", lambda s: reverse("orders:detail", args=[s.orders["partial"].pk])),
    Page("order-canceled", lambda s: reverse("orders:detail", args=[s.orders["canceled"].pk])),
    Page("order-dripfeed", lambda s: reverse("orders:detail", args=[s.orders["dripfeed"].pk])),
    Page("order-subscription", lambda s: reverse("orders:detail", args=[s.orders["subscription"].pk])),
    Page("refills", _fixed("orders:refills")),
    Page("services", _fixed("catalog:services")),
    Page("add-funds", _fixed("wallets:add_funds")),
    Page("payment", lambda s: reverse("wallets:payment_detail", args=[s.payment.pk])),  # type: ignore[union-attr]
    Page("transactions", _fixed("wallets:transactions")),
    Page("affiliates", _fixed("wallets:affiliates")),
    Page("api", _fixed("api:page")),
    Page("tickets", _fixed("support:list")),
    Page("ticket-new", _fixed("support:new")),
    Page("ticket", lambda s: reverse("support:detail", args=[s.ticket.pk])),
    Page("account", _fixed("accounts:account")),
    Page("account-email", _fixed("account_email")),
    Page("account-password", _fixed("account_change_password")),
    Page("account-2fa", _fixed("mfa_index")),
    Page("home-customer", _fixed("home")),
    Page("not-found-customer", lambda s: "/orders/999999/", status=404),
)

# The pages whose screenshots are kept in docs/screenshots/ (the rest are written only on request).
KEY_PAGES = ("new-order", "orders", "services", "add-funds", "order-partial")
