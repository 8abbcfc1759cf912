"""What an order costs (API_V2.md): every type is charged at least what its provider takes,
and the provider's own charge is reconciled with what the panel expected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from catalog.models import Service
from kernel import protocol
from kernel.money import refund_for_remains
from orders.models import Order, OrderEvent, State, Status
from orders.services import OrderError, order_place, order_profit, order_submit, order_sync_chunk
from simulators.provider import Simulator
from tests.orders.factories import fund
from wallets.audit import ledger_audit
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db
LINK = "https://instagram.com/p/bill"

# (case, type, fields, billed units)
CASES: list[tuple[str, str, dict[str, str], int]] = [
    ("default", "Default", {"quantity": "1000"}, 1000),
    ("drip-feed", "Default", {"quantity": "1000", "runs": "5", "interval": "10"}, 5000),
    ("package", "Package", {}, 1),
    ("seo", "SEO", {"quantity": "1000", "keywords": "a\nb"}, 1000),
    ("custom comments", "Custom Comments", {"comments": "\n".join(f"line {i}" for i in range(20))}, 20),
    ("custom comments package", "Custom Comments Package", {"comments": "\n".join(f"c{i}" for i in range(20))}, 1),
    ("mentions", "Mentions", {"quantity": "1000", "usernames": "u1\nu2"}, 1000),
    (
        "mentions with hashtags",
        "Mentions with Hashtags",
        {"quantity": "1000", "usernames": "u1", "hashtags": "#a"},
        1000,
    ),
    ("mentions custom list", "Mentions Custom List", {"usernames": "u1\nu2\nu3"}, 3),
    ("mentions hashtag", "Mentions Hashtag", {"quantity": "1000", "hashtag": "#t"}, 1000),
    ("mentions user followers", "Mentions User Followers", {"quantity": "1000", "username": "bob"}, 1000),
    (
        "mentions media likers",
        "Mentions Media Likers",
        {"quantity": "1000", "media": "https://instagram.com/p/m"},
        1000,
    ),
    ("comment likes", "Comment Likes", {"quantity": "1000", "username": "bob"}, 1000),
    ("poll", "Poll", {"quantity": "1000", "answer_number": "2"}, 1000),
    ("comment replies", "Comment Replies", {"username": "bob", "comments": "x\ny"}, 2),
    ("invites from groups", "Invites from Groups", {"quantity": "1000", "groups": "g1\ng2"}, 1000),
    ("subscription with posts", "Subscriptions", {"min": "4000", "max": "5000", "delay": "0", "posts": "100"}, 500000),
    ("subscription without posts", "Subscriptions", {"min": "4000", "max": "5000", "delay": "0"}, 5000 * 100),
    ("web traffic", "Web Traffic", {"quantity": "1000", "country": "US", "device": "1", "type_of_traffic": "2"}, 1000),
    (
        "web traffic drip-feed",
        "Web Traffic",
        {"quantity": "1000", "runs": "3", "interval": "10", "country": "US", "device": "1", "type_of_traffic": "2"},
        3000,
    ),
]


def test_the_cases_cover_every_type() -> None:
    assert {type_name for _, type_name, _, _ in CASES} == {t.name for t in protocol.SERVICE_TYPES}


def place(user: Any, service: Service, fields: dict[str, str], n: int = 0) -> Order:
    where = {"username": f"acct{service.pk}x{n}"} if service.type == "Subscriptions" else {"link": f"{LINK}/{n}"}
    return order_place(user=user, service_id=service.pk, fields={**fields, **where})


def provider_took(sim: Simulator, order: Order) -> Decimal:
    return Decimal(sim.order(int(order.provider_order_id))["charge"])


@pytest.mark.parametrize(("case", "type_name", "fields", "units"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("markup", ["0", "30"])
def test_every_type_is_charged_at_least_what_the_provider_takes(
    customer, shop, simulator, queue, case, type_name, fields, units, markup
):
    fund(customer, "100000")
    rate = Decimal("4.00")  # upstream rate: per 1000, per package, per 1000 per post
    price = rate * (100 + Decimal(markup)) / 100
    dripfeed = "runs" in fields
    service = shop.service(type=type_name, rate=str(rate), price=f"{price:f}", min=1, max=1_000_000, dripfeed=dripfeed)
    before = simulator.balance("test-key")
    order = place(customer, service, fields)
    assert order.quantity == units
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    took = before - simulator.balance("test-key")
    assert took == provider_took(simulator, order) > 0
    # The panel expected exactly what the provider took, and charged at least that.
    assert order.cost == took
    assert order.charge >= took
    if markup != "0":
        assert order.charge > took
    assert wallet_balance(user=customer) == Decimal("100000") - order.charge


def test_the_reported_cases_now_cost_what_they_should(customer, shop, simulator, queue):
    """The three orders of the report: a 5000 × 100 posts subscription, 20 custom comments
    lines sold as a package, and a package listed at 18.876."""
    fund(customer, "1000")
    subscription = shop.service(type="Subscriptions", rate="0.40", price="0.520000", min=5000, max=5000)
    order = place(customer, subscription, {"min": "5000", "max": "5000", "delay": "0", "posts": "100"})
    assert (order.cost, order.charge) == (Decimal("200.00000"), Decimal("260.00000"))
    package = shop.service(type="Package", rate="14.52", price="18.876000", min=1, max=1)
    assert place(customer, package, {}).charge == Decimal("18.87600")
    comments = shop.service(type="Custom Comments Package", rate="0.91", price="1.183000", min=1, max=1)
    order = place(customer, comments, {"comments": "\n".join(str(i) for i in range(20))})
    assert (order.cost, order.charge) == (Decimal("0.91000"), Decimal("1.18300"))


def test_a_package_billed_per_1000_lines_counts_its_lines(customer, shop, queue):
    fund(customer)
    service = shop.service(type="Custom Comments Package", rate="2.00", price="3.000000", min=1, max=1)
    Service.objects.filter(pk=service.pk).update(billing_unit=protocol.BILL_PER_1000)
    order = place(customer, service, {"comments": "a\nb\nc\nd"})
    assert (order.quantity, order.billing, order.charge, order.cost) == (
        4,
        protocol.BILL_PER_1000,
        Decimal("0.01200"),
        Decimal("0.00800"),
    )


def test_a_billing_unit_that_does_not_fit_the_type_is_refused_in_the_admin_form(shop):
    service = shop.service(type="Default")
    service.billing_unit = protocol.BILL_PER_PACKAGE
    with pytest.raises(Exception, match="billed per 1000"):
        service.full_clean()


def test_a_subscription_always_names_its_posts_upstream(customer, shop, simulator, queue):
    fund(customer, "1000")
    service = shop.service(type="Subscriptions", rate="1.00", price="1.000000", min=10, max=1000, max_posts=30)
    order = place(customer, service, {"min": "10", "max": "100", "delay": "0"})
    assert order.fields["posts"] == 30 and order.quantity == 3000
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert simulator.order(int(order.provider_order_id))["quantity"] == 3000
    with pytest.raises(OrderError, match="Incorrect posts: from 1 to 30"):
        place(customer, service, {"min": "10", "max": "100", "delay": "0", "posts": "31"}, n=1)


def sync(order: Order) -> Order:
    order_sync_chunk(provider_id=order.provider_id, order_ids=[order.pk])
    order.refresh_from_db()
    return order


def test_a_subscription_lives_active_paused_and_returns_what_it_did_not_deliver(customer, shop, simulator, queue):
    fund(customer, "1000")
    service = shop.service(type="Subscriptions", rate="1.00", price="1.300000", min=10, max=1000)
    order = place(customer, service, {"min": "100", "max": "200", "delay": "0", "posts": "10"})
    assert order.charge == Decimal("2.60000")  # 200 × 10 posts at 1.30 per 1000
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    pid = int(order.provider_order_id)
    simulator.force_status(pid, "In progress")
    assert (sync(order).status, order.provider_status) == (Status.IN_PROGRESS, "Active")
    simulator.force_status(pid, "Processing")
    assert (sync(order).status, order.provider_status) == (Status.PROCESSING, "Paused")
    # It expires after 4 of 10 posts: the provider returns 6/10 of what it held.
    simulator.force_status(pid, "Partial", remains=1200)
    assert sync(order).status == Status.PARTIAL
    assert (order.provider_status, order.remains) == ("Expired", 1200)
    refund = refund_for_remains(charge=order.charge, remains=1200, quantity=2000)
    assert wallet_balance(user=customer) == Decimal("1000") - order.charge + refund
    assert ledger_audit() == []


def test_an_expired_subscription_is_refunded_by_what_the_provider_gave_back(customer, shop, simulator, queue):
    """A provider that says only Expired and its final charge (no usable remains)."""
    fund(customer, "1000")
    service = shop.service(type="Subscriptions", rate="1.00", price="2.000000", min=10, max=1000)
    order = place(customer, service, {"min": "100", "max": "100", "delay": "0", "posts": "10"})
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    # The provider gave back 0.25 of the 1.00 it held (a quarter of 1000 likes undelivered).
    simulator.force_status(int(order.provider_order_id), "Partial", remains=250)
    simulator._orders[int(order.provider_order_id)].remains = 999_999  # remains it cannot mean
    assert sync(order).status == Status.PARTIAL
    assert order.remains == 250
    assert ledger_audit() == []


def test_a_canceled_status_refunds_in_full_even_with_odd_remains(customer, shop, simulator, queue):
    fund(customer, "100")
    order = place(customer, shop.service(), {"quantity": "100"})
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    simulator.force_status(int(order.provider_order_id), "Canceled")
    simulator._orders[int(order.provider_order_id)].remains = 5000  # as the independent provider answered
    assert sync(order).status == Status.CANCELED
    assert order.remains == 100 and order.sync_flag and "remains 5000" in order.sync_note
    assert wallet_balance(user=customer) == Decimal("100")
    assert ledger_audit() == []


def test_completed_with_nothing_delivered_is_flagged_not_accepted(customer, shop, simulator, queue):
    fund(customer, "100")
    order = place(customer, shop.service(), {"quantity": "100"})
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    simulator.force_status(int(order.provider_order_id), "Completed", remains=100)
    assert sync(order).status == Status.PENDING
    assert order.sync_flag and "nothing delivered" in order.sync_note


def overcharging(shop: Any, simulator: Simulator, *, price: str, real_rate: str) -> Service:
    """A service whose provider charges `real_rate` where the panel knows 1.00."""
    service = shop.service(price=price, rate="1.00")
    external = int(service.routes.get().upstream.external_id)
    simulator.set_service(external, rate=real_rate)
    return service


def test_a_provider_charging_more_than_the_customer_paid_stops_the_service(
    customer, shop, simulator, queue, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("Staff", "staff@example.com")]
    fund(customer, "100")
    service = overcharging(shop, simulator, price="1.300000", real_rate="5.00")
    order = place(customer, service, {"quantity": "1000"})
    assert order_submit(order_id=order.pk) == "sent"
    order.refresh_from_db()
    assert (order.charge, order.cost) == (Decimal("1.30000"), Decimal("1.00000"))
    with django_capture_on_commit_callbacks(execute=True):  # the alert is mailed once the sync commits
        sync(order)
    assert order.margin_flag and order.provider_charge == Decimal("5.00000")
    service.refresh_from_db()
    assert not service.is_enabled and f"order #{order.pk}" in service.disabled_reason
    assert [m.subject.endswith(f"Order #{order.pk} cost more upstream than the customer paid") for m in mailoutbox] == [
        True
    ]
    assert OrderEvent.objects.filter(order=order, reason__contains="more than the 1.30000").exists()
    assert order_profit(order=order) == Decimal("-3.70000")
    # Nothing new sells until staff act; the next sync does not alert again.
    with pytest.raises(OrderError, match=protocol.ERR_INCORRECT_SERVICE):
        place(customer, service, {"quantity": "1000"}, n=1)
    with django_capture_on_commit_callbacks(execute=True):
        sync(order)
    assert len(mailoutbox) == 1


def test_a_provider_charging_more_than_expected_is_flagged_but_not_a_loss(customer, shop, simulator, queue, mailoutbox):
    fund(customer, "100")
    service = overcharging(shop, simulator, price="5.000000", real_rate="2.00")
    order = place(customer, service, {"quantity": "1000"})
    assert order_submit(order_id=order.pk) == "sent"
    sync(order)
    assert order.margin_flag and order.status == Status.PENDING
    service.refresh_from_db()
    assert service.is_enabled and mailoutbox == []


def test_rounding_is_not_a_margin_problem(customer, shop, simulator, queue):
    fund(customer, "100")
    order = place(customer, shop.service(), {"quantity": "1000"})
    assert order_submit(order_id=order.pk) == "sent"
    simulator.force_status(int(Order.objects.get(pk=order.pk).provider_order_id), "In progress")
    assert sync(order).margin_flag is False
    assert order.provider_charge == order.cost


@pytest.fixture(autouse=True)
def _fresh_alerts() -> None:
    cache.clear()


def test_the_order_page_shows_a_subscription_in_its_own_words(client, customer, shop, simulator, queue):
    fund(customer, "100")
    service = shop.service(type="Subscriptions", rate="1.00", price="1.000000", min=10, max=1000)
    order = place(customer, service, {"min": "10", "max": "20", "delay": "0", "posts": "5"})
    order_submit(order_id=order.pk)
    order.refresh_from_db()
    simulator.force_status(int(order.provider_order_id), "Processing")
    sync(order)
    client.force_login(customer)
    assert "Paused" in client.get(f"/orders/{order.pk}/").content.decode()
    assert "Paused" in client.get("/orders/").content.decode()
    assert order.state == State.SENT
