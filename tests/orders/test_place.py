from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kernel import protocol
from orders.models import Order, OrderEvent, State, Status
from orders.services import OrderError, order_transition
from tests.orders.factories import fund, ledger
from wallets.audit import ledger_audit
from wallets.models import Entry, Payment
from wallets.selectors import wallet_balance, wallet_debt
from wallets.services import payment_reverse, payment_settle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["written-out", "orm"])
def placing_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both paths of placing: its statements written out for
    PostgreSQL (orders/queries.py, wallets/ledger.py), and the ORM's, which SQLite takes."""
    if request.param == "orm":
        monkeypatch.setattr("kernel.db.written_out", lambda: False)
    return str(request.param)


def refused(place: Any, queue: Any, user: Any, service: Any, message: str, **fields: Any) -> None:
    """The request fails with `message` and changes nothing: money, ledger, orders, queue."""
    before = (ledger(user), Order.objects.count(), OrderEvent.objects.count(), len(queue))
    with pytest.raises(OrderError) as caught:
        place(user, service, **fields)
    assert caught.value.message == message
    assert (ledger(user), Order.objects.count(), OrderEvent.objects.count(), len(queue)) == before


def test_default_order_is_charged_snapshotted_and_queued(customer, shop, place, queue):
    fund(customer, "10")
    service = shop.service(price="1.300000", rate="1.00")
    order = place(customer, service, link="https://instagram.com/p/1", quantity="1000")

    order.refresh_from_db()
    assert (order.status, order.state) == (Status.PENDING, State.QUEUED)
    assert order.charge == Decimal("1.30000")
    assert order.price_per_1000 == Decimal("1.300000")
    assert order.provider_rate == Decimal("1.000000")
    assert order.cost == Decimal("1.00000")
    assert order.quantity == 1000
    assert order.fields == {"link": "https://instagram.com/p/1", "quantity": 1000}
    assert order.provider == shop.provider()
    assert order.external_service_id == service.routes.get().upstream.external_id
    charge = Entry.objects.get(user=customer, kind="charge")
    assert (charge.amount, charge.idempotency_key, charge.order_ref) == (
        Decimal("-1.30000"),
        f"order:{order.pk}:charge",
        order.pk,
    )
    assert ledger(customer)[0] == Decimal("8.70000")
    assert queue.ids() == [order.pk]
    assert list(order.events.values_list("to_status", "to_state")) == [(Status.PENDING, State.QUEUED)]


def test_price_comes_from_the_server_with_the_customers_discount(customer, shop, place):
    customer.discount_percent = Decimal("10")
    customer.save()
    fund(customer, "10")
    service = shop.service(price="2.000000")
    order = place(customer, service, link="https://x.com/a", quantity="500", price="0.000001", charge="0")
    assert order.price_per_1000 == Decimal("1.800000")
    assert order.charge == Decimal("0.90000")


def test_charge_rounds_half_up(customer, shop, place):
    fund(customer)
    service = shop.service(price="0.123455", min=1)
    order = place(customer, service, link="https://x.com/a", quantity="100")
    assert order.charge == Decimal("0.01235")  # 0.0123455 → half-up


@pytest.mark.parametrize(
    "service_id",
    ["999999", "abc", "", None, "1.5"],
)
def test_unknown_service_is_refused(customer, shop, place, queue, service_id):
    fund(customer)
    shop.service()
    refused(place, queue, customer, service_id, protocol.ERR_INCORRECT_SERVICE, link="https://x.com/a", quantity="100")


def test_disabled_service_category_or_routeless_service_is_refused(customer, shop, place, queue):
    fund(customer)
    disabled = shop.service(is_enabled=False)
    refused(place, queue, customer, disabled, protocol.ERR_INCORRECT_SERVICE, link="https://x.com/a", quantity="100")
    hidden = shop.service()
    hidden.category.is_enabled = False
    hidden.category.save()
    refused(place, queue, customer, hidden, protocol.ERR_INCORRECT_SERVICE, link="https://x.com/a", quantity="100")
    routeless = shop.service()
    routeless.routes.all().delete()
    refused(place, queue, customer, routeless, protocol.ERR_INCORRECT_SERVICE, link="https://x.com/a", quantity="100")


@pytest.mark.parametrize(
    "link",
    [
        "",
        "   ",
        "javascript:alert(1)",
        "JavaScript://x.com/%0Aalert(1)",
        "ftp://x.com/a",
        "x.com/a",
        "http://",
        "https://exa mple.com/",
        "https://x.com/a\nb",
        "https://[::1",
        "https://x.com/" + "a" * 1990,
        "https://x.com/\u202egpj.exe",
        "https://x.com/a\u2066b\u2069",
        "https://x\u200b.com/a",
        "https://x.com/\u200fa",
        "https://x.com/\ufeffa",
        "https://x.com/\ud800",
    ],
)
def test_bad_links_are_refused(customer, shop, place, queue, link):
    fund(customer)
    service = shop.service()
    refused(place, queue, customer, service, protocol.ERR_INCORRECT_LINK, link=link, quantity="100")


def test_link_of_2000_characters_is_accepted(customer, shop, place):
    fund(customer)
    link = "https://x.com/" + "a" * (2000 - len("https://x.com/"))
    assert place(customer, shop.service(), link=link, quantity="100").link == link


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("9", protocol.err_min_quantity(10)),
        ("0", protocol.err_min_quantity(10)),
        ("-5", protocol.err_min_quantity(10)),
        ("", protocol.err_min_quantity(10)),
        ("ten", protocol.err_min_quantity(10)),
        ("10001", protocol.err_max_quantity(10000)),
    ],
)
def test_quantity_outside_the_limits_is_refused(customer, shop, place, queue, quantity, message):
    fund(customer)
    refused(place, queue, customer, shop.service(), message, link="https://x.com/a", quantity=quantity)


def test_errors_come_in_the_documented_order(customer, shop, place, queue):
    fund(customer, "0.00001")
    service = shop.service()
    refused(place, queue, customer, 999999, protocol.ERR_INCORRECT_SERVICE, link="bad", quantity="1")
    refused(place, queue, customer, service, protocol.ERR_INCORRECT_LINK, link="bad", quantity="1")
    refused(place, queue, customer, service, protocol.err_min_quantity(10), link="https://x.com/a", quantity="1")
    refused(place, queue, customer, service, protocol.ERR_NOT_ENOUGH_FUNDS, link="https://x.com/a", quantity="100")


def test_not_enough_funds_changes_nothing(customer, shop, place, queue):
    fund(customer, "0.12999")
    refused(
        place, queue, customer, shop.service(), protocol.ERR_NOT_ENOUGH_FUNDS, link="https://x.com/a", quantity="100"
    )


def test_customer_without_a_wallet_gets_not_enough_funds(customer, shop, place, queue):
    refused(
        place, queue, customer, shop.service(), protocol.ERR_NOT_ENOUGH_FUNDS, link="https://x.com/a", quantity="100"
    )


def test_exact_balance_is_enough(customer, shop, place):
    fund(customer, "0.13000")
    place(customer, shop.service(), link="https://x.com/a", quantity="100")
    assert ledger(customer)[0] == Decimal("0")


# --- Types ------------------------------------------------------------------------------------
def test_custom_comments_quantity_is_the_number_of_lines(customer, shop, place, queue):
    fund(customer)
    service = shop.service(type="Custom Comments", min=2, max=3)
    order = place(customer, service, link="https://x.com/a", comments="nice\r\ngreat\n\n")
    assert order.quantity == 2
    assert order.fields == {"link": "https://x.com/a", "comments": ["nice", "great"]}
    refused(place, queue, customer, service, protocol.err_min_quantity(2), link="https://x.com/b", comments="one")
    refused(place, queue, customer, service, protocol.err_min_quantity(2), link="https://x.com/b")
    refused(
        place, queue, customer, service, protocol.err_max_quantity(3), link="https://x.com/b", comments="a\nb\nc\nd"
    )


@pytest.mark.parametrize("type_name", ["Mentions Custom List"])
def test_usernames_list_is_the_quantity(customer, shop, place, type_name):
    fund(customer)
    order = place(customer, shop.service(type=type_name, min=1), link="https://x.com/a", usernames=["a", "b", "c"])
    assert order.quantity == 3


def test_comment_replies_need_a_username_and_count_comments(customer, shop, place, queue):
    fund(customer)
    service = shop.service(type="Comment Replies", min=1)
    refused(place, queue, customer, service, "Username is required", link="https://x.com/a", comments="hi")
    order = place(customer, service, link="https://x.com/a", username="bob", comments="hi\nyo")
    assert (order.quantity, order.fields["username"]) == (2, "bob")


@pytest.mark.parametrize("type_name", ["Package", "Custom Comments Package"])
def test_packages_are_one_package_at_the_rate(customer, shop, place, type_name):
    fund(customer)
    service = shop.service(type=type_name, price="18.876000", min=1, max=1)
    order = place(customer, service, link="https://x.com/a", quantity="777", comments="a\nb")
    assert (order.quantity, order.billing) == (1, "per_package")
    assert order.charge == Decimal("18.87600")
    assert "quantity" not in order.fields


def test_custom_comments_package_needs_comments(customer, shop, place, queue):
    fund(customer)
    service = shop.service(type="Custom Comments Package", min=1, max=1)
    refused(place, queue, customer, service, "Comments is required", link="https://x.com/a")


@pytest.mark.parametrize(
    ("type_name", "fields", "message"),
    [
        ("SEO", {}, "Keywords is required"),
        ("Mentions", {}, "Usernames is required"),
        ("Mentions with Hashtags", {"usernames": "a"}, "Hashtags is required"),
        ("Mentions Hashtag", {}, "Hashtag is required"),
        ("Mentions User Followers", {}, "Username is required"),
        ("Mentions Media Likers", {}, "Media link is required"),
        ("Mentions Media Likers", {"media": "not a link"}, "Incorrect media link"),
        ("Comment Likes", {}, "Username is required"),
        ("Poll", {}, "Answer number is required"),
        ("Poll", {"answer_number": "first"}, "Incorrect answer number"),
        ("Invites from Groups", {}, "Groups is required"),
        ("Web Traffic", {"device": "6"}, "Incorrect device"),
        ("Web Traffic", {"type_of_traffic": "0"}, "Incorrect type of traffic"),
        ("Web Traffic", {"referring_url": "javascript:x"}, "Incorrect referring url"),
    ],
)
def test_type_specific_fields_are_checked(customer, shop, place, queue, type_name, fields, message):
    fund(customer)
    service = shop.service(type=type_name)
    refused(place, queue, customer, service, message, link="https://x.com/a", quantity="100", **fields)


@pytest.mark.parametrize(
    ("type_name", "fields", "stored"),
    [
        ("SEO", {"keywords": "a, b"}, {"keywords": ["a", "b"]}),
        (
            "Mentions with Hashtags",
            {"usernames": "u1\nu2", "hashtags": "#x"},
            {"usernames": ["u1", "u2"], "hashtags": ["#x"]},
        ),
        ("Mentions Hashtag", {"hashtag": "#tag"}, {"hashtag": "#tag"}),
        ("Mentions Media Likers", {"media": "https://x.com/m/1"}, {"media": "https://x.com/m/1"}),
        ("Poll", {"answer_number": "2"}, {"answer_number": 2}),
        ("Invites from Groups", {"groups": ["g1", "g2"]}, {"groups": ["g1", "g2"]}),
        (
            "Web Traffic",
            {"country": "US", "device": "2", "type_of_traffic": "1", "google_keyword": "shoes"},
            {"country": "US", "device": 2, "type_of_traffic": 1, "google_keyword": "shoes"},
        ),
    ],
)
def test_type_specific_fields_are_stored_for_the_provider(customer, shop, place, type_name, fields, stored):
    fund(customer)
    order = place(customer, shop.service(type=type_name), link="https://x.com/a", quantity="100", **fields)
    assert order.fields == {"link": "https://x.com/a", "quantity": 100, **stored}


# --- Drip-feed --------------------------------------------------------------------------------
def test_dripfeed_charges_runs_times_quantity(customer, shop, place):
    fund(customer)
    service = shop.service(dripfeed=True, price="1.000000")
    order = place(customer, service, link="https://x.com/a", quantity="100", runs="5", interval="30")
    assert (order.quantity, order.runs, order.interval) == (500, 5, 30)
    assert order.fields == {"link": "https://x.com/a", "quantity": 100, "runs": 5, "interval": 30}
    assert order.charge == Decimal("0.50000")


def test_dripfeed_checks_min_per_run_and_max_on_the_total(customer, shop, place, queue):
    fund(customer)
    service = shop.service(dripfeed=True, min=10, max=1000)
    link = "https://x.com/a"
    refused(
        place, queue, customer, service, protocol.err_min_quantity(10), link=link, quantity="9", runs="2", interval="5"
    )
    refused(
        place,
        queue,
        customer,
        service,
        protocol.err_max_quantity(1000),
        link=link,
        quantity="500",
        runs="3",
        interval="5",
    )
    refused(
        place,
        queue,
        customer,
        service,
        "Incorrect interval: minutes between runs, from 1",
        link=link,
        quantity="50",
        runs="3",
    )
    refused(
        place,
        queue,
        customer,
        service,
        "Incorrect runs: a whole number of runs from 1 is needed",
        link=link,
        quantity="50",
        runs="x",
        interval="5",
    )


def test_dripfeed_is_refused_where_the_service_has_none(customer, shop, place, queue):
    fund(customer)
    service = shop.service(dripfeed=False)
    refused(
        place,
        queue,
        customer,
        service,
        "Drip-feed is not available for this service",
        link="https://x.com/a",
        quantity="100",
        runs="2",
        interval="5",
    )


# --- Subscriptions ----------------------------------------------------------------------------
def subscription(**overrides: Any) -> dict[str, Any]:
    fields = {"username": "someone", "min": "100", "max": "200", "delay": "30", "posts": "10"}
    fields.update(overrides)
    return fields


def test_subscription_needs_no_link_and_holds_max_times_posts(customer, shop, place):
    fund(customer)
    service = shop.service(type="Subscriptions", min=50, max=1000, price="2.000000")
    expiry = (timezone.now() + timedelta(days=30)).strftime("%d/%m/%Y")
    order = place(customer, service, **subscription(expiry=expiry, old_posts="2"))
    # 200 per post × 10 posts at 2.00 per 1000
    assert (order.link, order.quantity, order.charge) == ("", 2000, Decimal("4.00000"))
    assert order.fields == {
        "username": "someone",
        "min": 100,
        "max": 200,
        "delay": 30,
        "posts": 10,
        "old_posts": 2,
        "expiry": expiry,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min": "49"}, protocol.err_min_quantity(50)),
        ({"min": ""}, protocol.err_min_quantity(50)),
        ({"max": "1001"}, protocol.err_max_quantity(1000)),
        ({"min": "300", "max": "200"}, "Incorrect max: it must not be less than min"),
        ({"username": ""}, "Username is required"),
        ({"username": "two words"}, "Incorrect username"),
        ({"delay": "7"}, "Incorrect delay: one of " + ", ".join(str(d) for d in protocol.SUBSCRIPTION_DELAYS)),
        ({"delay": ""}, "Delay is required"),
        ({"posts": "many"}, "Incorrect posts"),
        ({"expiry": "2030-01-01"}, "Incorrect expiry: a date as d/m/Y is needed"),
        ({"expiry": "01/01/2001"}, "Incorrect expiry: the date has passed"),
    ],
)
def test_subscription_fields_are_checked(customer, shop, place, queue, overrides, message):
    fund(customer)
    service = shop.service(type="Subscriptions", min=50, max=1000)
    refused(place, queue, customer, service, message, **subscription(**overrides))


# --- Duplicate guard --------------------------------------------------------------------------
def test_active_order_on_the_same_link_is_refused_until_it_finishes(customer, other_customer, shop, place, queue):
    fund(customer)
    fund(other_customer)
    service = shop.service()
    first = place(customer, service, link="https://x.com/a", quantity="100")
    refused(place, queue, customer, service, protocol.ERR_DUPLICATE_LINK, link="https://x.com/a", quantity="200")
    place(customer, service, link="https://x.com/b", quantity="100")  # another link
    place(customer, shop.service(), link="https://x.com/a", quantity="100")  # another service
    place(other_customer, service, link="https://x.com/a", quantity="100")  # another customer
    first.refresh_from_db()
    order_transition(order=first, state=State.SENDING, reason="test")
    order_transition(order=first, state=State.SENT, reason="test", changes={"provider_order_id": "1"})
    order_transition(order=first, status=Status.COMPLETED, reason="test")
    place(customer, service, link="https://x.com/a", quantity="100")


def test_duplicate_links_are_allowed_where_the_service_says_so(customer, shop, place):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    place(customer, service, link="https://x.com/a", quantity="100")
    place(customer, service, link="https://x.com/a", quantity="100")
    assert Order.objects.filter(user=customer).count() == 2


# --- Idempotency ------------------------------------------------------------------------------
def test_same_idempotency_key_and_params_return_the_same_order_once_charged(customer, shop, place, queue):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    first = place(customer, service, idempotency_key="k-1", link="https://x.com/a", quantity="100")
    again = place(customer, str(service.pk), idempotency_key="k-1", link=" https://x.com/a", quantity=100)
    assert again.pk == first.pk
    assert Entry.objects.filter(user=customer, kind="charge").count() == 1
    assert queue.ids() == [first.pk]


def test_same_idempotency_key_with_other_params_is_refused(customer, shop, place, queue):
    fund(customer)
    service = shop.service(allow_duplicate_link=True)
    place(customer, service, idempotency_key="k-1", link="https://x.com/a", quantity="100")
    refused(
        place,
        queue,
        customer,
        service,
        "This idempotency key was already used for a different order",
        idempotency_key="k-1",
        link="https://x.com/a",
        quantity="101",
    )


def test_idempotency_keys_belong_to_one_customer(customer, other_customer, shop, place):
    fund(customer)
    fund(other_customer)
    service = shop.service()
    mine = place(customer, service, idempotency_key="k-1", link="https://x.com/a", quantity="100")
    theirs = place(other_customer, service, idempotency_key="k-1", link="https://x.com/a", quantity="100")
    assert mine.pk != theirs.pk


@pytest.mark.parametrize(
    ("type_name", "fields", "message"),
    [
        ("Custom Comments", {"comments": "nice\nreversed \u202etxt.exe"}, "none of them invisible or reordering"),
        ("Mentions", {"quantity": "100", "usernames": "ann\nb\u2066ob"}, "Incorrect usernames"),
        ("Mentions Hashtag", {"quantity": "100", "hashtag": "#a\x00b"}, "Incorrect hashtag"),
        ("Comment Likes", {"quantity": "100", "username": "bo\u202eb"}, "Incorrect username"),
    ],
)
def test_free_text_that_reorders_or_hides_text_is_refused(customer, shop, place, queue, type_name, fields, message):
    fund(customer)
    service = shop.service(type=type_name, min=1, max=10000)
    before = ledger(customer)
    with pytest.raises(OrderError, match=message):
        place(customer, service, link="https://x.com/a", **fields)
    assert ledger(customer) == before and queue == []


def test_emoji_joined_by_zero_width_joiners_are_ordinary_comments(customer, shop, place):
    fund(customer)
    service = shop.service(type="Custom Comments", min=1, max=100)
    order = place(
        customer, service, link="https://x.com/a", comments="family \U0001f468\u200d\U0001f469\u200d\U0001f467\nok"
    )
    assert order.quantity == 2


def test_a_customer_who_owes_a_chargeback_cannot_order_until_a_deposit_pays_it(customer, shop, place, queue):
    deposit = Payment.objects.create(user=customer, gateway="manual", amount=Decimal("10"), currency="USD")
    payment_settle(payment_id=deposit.pk)
    service = shop.service(price="1.000000", rate="0.50")
    place(customer, service, link="https://x.com/a", quantity="9000")  # spends 9 of the 10
    payment_reverse(payment_id=deposit.pk, amount=Decimal("10"), kind="chargeback", reason="dispute", reference="dp_1")
    assert (wallet_balance(user=customer), wallet_debt(user=customer)) == (Decimal("0"), Decimal("9"))

    owing = "Your account owes 9.00 USD from a reversed payment: add funds to pay it first"
    refused(place, queue, customer, service, owing, link="https://x.com/b", quantity="100")

    again = Payment.objects.create(user=customer, gateway="manual", amount=Decimal("20"), currency="USD")
    payment_settle(payment_id=again.pk)
    assert (wallet_balance(user=customer), wallet_debt(user=customer)) == (Decimal("11"), Decimal("0"))
    place(customer, service, link="https://x.com/b", quantity="1000")
    assert wallet_balance(user=customer) == Decimal("10")
    assert ledger_audit() == []


@pytest.mark.postgres
def test_on_postgresql_the_placing_transaction_is_three_prepared_statements(customer, shop, place, placing_path):
    fund(customer, "10")
    service = shop.service(price="1.300000", rate="1.00")
    with CaptureQueriesContext(connection) as queries:
        order = place(customer, service, link="https://instagram.com/p/written", quantity="1000")
    statements = [q["sql"] for q in queries.captured_queries]
    placing = [sql for sql in statements if "FOR NO KEY UPDATE" in sql or "INSERT" in sql or "EXISTS" in sql]
    if placing_path == "orm":
        assert len([sql for sql in placing if "INSERT" in sql]) == 4  # order, entry, decision, event
        return
    # The lock; the order with its decision and event, unless a duplicate; the charge with its entry.
    assert len(placing) == 3, placing
    assert "FOR NO KEY UPDATE" in placing[0]
    assert "NOT EXISTS" in placing[1] and "INSERT INTO orders_orderevent" in placing[1]
    assert 'UPDATE "wallets_wallet"' in placing[2] and "INSERT INTO wallets_entry" in placing[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = " ".join(row[0] for row in cursor.fetchall())
    assert "INSERT INTO orders_order" in prepared and "INSERT INTO wallets_entry" in prepared
    assert "FOR NO KEY UPDATE" in prepared
    # The same rows the ORM writes (the test above checks every field of them).
    assert Entry.objects.get(order_ref=order.pk).balance_after == Decimal("10") - order.charge
    assert order.routing_decisions.get().stage == "placing"
    assert order.events.get().reason == f"placed, charged {order.charge}"
