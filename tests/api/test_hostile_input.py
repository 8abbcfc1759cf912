"""Hostile requests to API v2: numbers Python's int() reads but a person does not write,
bodies nested thousands deep, lone surrogates and NUL bytes, one order named many times.
Each gets the protocol's error (HTTP 200) and changes nothing; none is a 500."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from api import actions
from orders.models import Order, Refill
from tests.api.test_api import _completed, body, place
from wallets.models import Entry
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db

UNICODE_NUMBERS = ["²", "1²", "١", "١٠٠", "１００", "1_0", "1_000", "+100", " ١ "]
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"


def arabic_indic(number: int) -> str:
    """The number in Arabic-Indic digits: int() reads it back as the number."""
    return "".join(chr(0x660 + int(d)) for d in str(number))


def superscript(number: int) -> str:
    """str.isdigit() is true for it; int() raises ValueError."""
    return "".join(_SUPERSCRIPTS[int(d)] for d in str(number))


def underscored(number: int) -> str:
    """int() reads `0_7` as 7."""
    return "0_" + str(number)


SPELLINGS = [arabic_indic, superscript, underscored, lambda n: f"+{n}", lambda n: f"{n}.0", hex]


def _nothing_changed(customer) -> None:
    assert Order.objects.count() == 0
    assert wallet_balance(user=customer) == Decimal("100.00000")
    assert Entry.objects.filter(user=customer).count() == 1


@pytest.mark.parametrize("quantity", UNICODE_NUMBERS)
def test_add_refuses_quantities_that_are_not_ascii_digits(api, key, customer, service, quantity):
    reply = body(api(key=key, action="add", service=service.pk, link="https://x.io/p", quantity=quantity))
    assert reply == {"error": "Quantity less than minimal 50"}
    _nothing_changed(customer)


@pytest.mark.parametrize("spell", SPELLINGS)
def test_add_refuses_service_ids_that_are_not_ascii_digits(api, key, customer, service, spell):
    reply = body(api(key=key, action="add", service=spell(service.pk), link="https://x.io/p", quantity=100))
    assert reply == {"error": "Incorrect service ID"}
    _nothing_changed(customer)


@pytest.mark.parametrize("name", ["runs", "interval"])
def test_add_refuses_unicode_drip_feed_numbers(api, key, customer, service, name):
    service.dripfeed = True
    service.save()
    params = {"runs": "2", "interval": "10", name: "²"}
    reply = body(api(key=key, action="add", service=service.pk, link="https://x.io/p", quantity=100, **params))
    assert "error" in reply
    _nothing_changed(customer)


@pytest.mark.parametrize("action", ["status", "refill", "cancel"])
@pytest.mark.parametrize("spell", [arabic_indic, superscript, underscored])
def test_order_ids_that_are_not_ascii_digits_are_incorrect_order_ids(api, key, service, action, spell):
    order_id = place(api, key, service)["order"]
    spelling = spell(order_id)
    reply = body(api(key=key, action=action, order=spelling))
    expected = {"error": "Incorrect order ID"}
    assert reply == ([{"order": spelling, "cancel": expected}] if action == "cancel" else expected)
    bulk = body(api(key=key, action=action, orders=f"{spelling},{order_id}"))
    if action == "status":
        assert bulk[spelling] == expected and bulk[str(order_id)]["status"] == "Pending"
    else:
        assert bulk[0]["order"] == spelling and bulk[0][action] == expected
    assert Refill.objects.count() == 0


def test_refill_ids_that_are_not_ascii_digits_are_not_found(api, key, service):
    order_id = place(api, key, service)["order"]
    _completed(order_id)
    refill_id = int(body(api(key=key, action="refill", order=order_id))["refill"])
    for spelling in (arabic_indic(refill_id), superscript(refill_id), underscored(refill_id)):
        assert body(api(key=key, action="refill_status", refill=spelling)) == {"error": "Refill not found"}
        assert body(api(key=key, action="refill_status", refills=f"{spelling},{refill_id}")) == [
            {"refill": spelling, "status": {"error": "Refill not found"}},
            {"refill": refill_id, "status": "Pending"},
        ]


# --- Bodies no form could carry --------------------------------------------------------------------------
def _json(client, payload: str | bytes):
    return client.post("/api/v2", payload, content_type="application/json")


@pytest.mark.parametrize("depth", [50, 10_000, 100_000])
def test_deeply_nested_json_is_an_incorrect_request(client, key, customer, service, depth):
    nested = "[" * depth + "]" * depth
    payload = f'{{"key":"{key}","action":"add","service":{service.pk},"link":"https://x.io/p","quantity":{nested}}}'
    assert body(_json(client, payload)) == {"error": "Incorrect request"}
    assert body(_json(client, "[" * depth + "]" * depth)) == {"error": "Incorrect request"}
    assert body(_json(client, '{"a":' * depth + "1" + "}" * depth)) == {"error": "Incorrect request"}
    _nothing_changed(customer)


def test_objects_inside_values_are_an_incorrect_request(client, key, customer, service):
    for value in ({"a": 1}, [[1]], [{"a": 1}]):
        payload = json.dumps(
            {"key": key, "action": "add", "service": service.pk, "link": "https://x.io/p", "quantity": value}
        )
        assert body(_json(client, payload)) == {"error": "Incorrect request"}
    _nothing_changed(customer)


def test_lists_of_plain_values_are_still_lists(client, key, customer):
    from tests.factories import RouteFactory, ServiceFactory

    svc = RouteFactory(service=ServiceFactory(type="Custom Comments", min_quantity=1, max_quantity=100)).service
    payload = json.dumps(
        {"key": key, "action": "add", "service": svc.pk, "link": "https://x.io/p", "comments": ["a", "b"]}
    )
    order = Order.objects.get(pk=body(_json(client, payload))["order"])
    assert order.fields["comments"] == ["a", "b"]


@pytest.mark.parametrize("field", ["key", "link", "comments", "usernames", "username", "action", "quantity"])
def test_lone_surrogates_in_json_are_an_incorrect_request(client, key, customer, field):
    from tests.factories import RouteFactory, ServiceFactory

    svc = RouteFactory(service=ServiceFactory(type="Mentions Custom List", min_quantity=1, max_quantity=100)).service
    params = {"key": key, "action": "add", "service": svc.pk, "link": "https://x.io/p", "usernames": "a\nb"}
    params[field] = params.get(field, "x") + "\ud800" if isinstance(params.get(field, ""), str) else "\ud800"
    payload = json.dumps(params)  # ensure_ascii: the surrogate travels as the escape \ud800
    assert "\\ud800" in payload
    assert body(_json(client, payload)) == {"error": "Incorrect request"}
    assert Order.objects.count() == 0
    assert wallet_balance(user=customer) == Decimal("100.00000")


def test_lone_surrogates_in_form_data_and_query_are_an_incorrect_request(client, key, customer, service):
    form = f"key={key}&action=add&service={service.pk}&link=https%3A%2F%2Fx.io%2F%ED%A0%80&quantity=100"
    reply = client.post("/api/v2", form, content_type="application/x-www-form-urlencoded")
    assert body(reply) == {"error": "Incorrect request"}
    reply = client.get(f"/api/v2?key={key}&action=add&service={service.pk}&link=https://x.io/%ED%A0%80&quantity=100")
    assert body(reply) == {"error": "Incorrect request"}
    # A replacement character sent as such (valid UTF-8) is just a character.
    reply = client.get(f"/api/v2?key={key}&action=balance&note=%EF%BF%BD")
    assert body(reply)["balance"] == "100.00000"
    _nothing_changed(customer)


@pytest.mark.parametrize(
    "extra",
    [
        {"usernames": "alice\nbob%00"},
        {"usernames": "%00"},
        {"link": "https://x.io/p%00"},
        {"key": "%00"},
        {"action": "add%00"},
    ],
)
def test_nul_bytes_are_an_incorrect_request(client, key, customer, extra):
    from tests.factories import RouteFactory, ServiceFactory

    svc = RouteFactory(service=ServiceFactory(type="Mentions Custom List", min_quantity=1, max_quantity=100)).service
    params = {"key": key, "action": "add", "service": str(svc.pk), "link": "https://x.io/p", "usernames": "a"}
    params.update(extra)
    form = "&".join(f"{k}={v}" for k, v in params.items())
    reply = client.post("/api/v2", form, content_type="application/x-www-form-urlencoded")
    assert body(reply) == {"error": "Incorrect request"}
    as_json = json.dumps({k: v.replace("%00", "\x00") for k, v in params.items()})
    assert body(_json(client, as_json)) == {"error": "Incorrect request"}
    assert Order.objects.count() == 0
    assert wallet_balance(user=customer) == Decimal("100.00000")


def test_hostile_bodies_are_refused_before_the_key_is_looked_up(client):
    assert body(_json(client, '{"key":"\\ud800","action":"balance"}')) == {"error": "Incorrect request"}
    assert body(_json(client, "[" * 10_000 + "]" * 10_000)) == {"error": "Incorrect request"}


def test_huge_numbers_in_json_are_refused(client, key, customer, service):
    for quantity in ("1" + "0" * 5000, "1e400", "1.5", "-100", "true"):
        payload = (
            f'{{"key":"{key}","action":"add","service":{service.pk},"link":"https://x.io/p","quantity":{quantity}}}'
        )
        reply = body(_json(client, payload))
        assert "error" in reply, quantity
    _nothing_changed(customer)


# --- One order named many times -------------------------------------------------------------------------
def test_status_answers_an_order_named_many_times_once(api, key, service):
    order_id = place(api, key, service)["order"]
    reply = body(api(key=key, action="status", orders=f"{order_id},0{order_id},00{order_id}, {order_id} ,x,x"))
    assert list(reply) == [str(order_id), "x"]
    assert reply[str(order_id)]["status"] == "Pending"


def test_cancel_acts_on_an_order_named_many_times_once(api, key, customer, service, monkeypatch):
    order_id = place(api, key, service)["order"]
    calls = []
    real = actions.cancel_request
    monkeypatch.setattr(actions, "cancel_request", lambda **kw: calls.append(kw) or real(**kw))
    reply = body(api(key=key, action="cancel", orders=f"{order_id},0{order_id},00{order_id}"))
    assert reply == [{"order": order_id, "cancel": 1}]
    assert len(calls) == 1
    assert Entry.objects.filter(user=customer, kind="refund").count() == 1


def test_refill_acts_on_an_order_named_many_times_once(api, key, service, monkeypatch):
    order_id = place(api, key, service)["order"]
    _completed(order_id)
    calls = []
    real = actions.refill_request
    monkeypatch.setattr(actions, "refill_request", lambda **kw: calls.append(kw) or real(**kw))
    reply = body(api(key=key, action="refill", orders=f"{order_id},0{order_id},00{order_id}"))
    refill = Refill.objects.get()
    assert reply == [{"order": order_id, "refill": refill.pk}]
    assert len(calls) == 1


def test_refill_status_answers_a_refill_named_many_times_once(api, key, service):
    order_id = place(api, key, service)["order"]
    _completed(order_id)
    refill_id = int(body(api(key=key, action="refill", order=order_id))["refill"])
    reply = body(api(key=key, action="refill_status", refills=f"{refill_id},0{refill_id}"))
    assert reply == [{"refill": refill_id, "status": "Pending"}]


def test_the_id_limit_counts_distinct_orders(api, key, service):
    order_id = place(api, key, service)["order"]
    repeated = ",".join(["0" * (n % 30) + str(order_id) for n in range(150)])
    assert list(body(api(key=key, action="status", orders=repeated))) == [str(order_id)]
    too_many = ",".join(str(i) for i in range(1, 102))
    assert body(api(key=key, action="status", orders=too_many)) == {"error": "Too many IDs, at most 100 per request"}


@pytest.mark.parametrize("value", ["a\x00b", "x\ud800", "ключ"])
def test_idempotency_keys_that_cannot_be_stored_are_refused(client, key, customer, service, value):
    params = {"key": key, "action": "add", "service": service.pk, "link": "https://x.io/p", "quantity": 100}
    reply = body(client.post("/api/v2", params, HTTP_IDEMPOTENCY_KEY=value))
    assert reply == {"error": "The idempotency key must be printable ASCII text"}
    _nothing_changed(customer)


def test_too_many_fields_is_an_incorrect_request_not_a_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    form = "key=x&action=balance&" + "&".join(f"f{i}=1" for i in range(500))
    assert body(client.post("/api/v2", form, content_type="application/x-www-form-urlencoded")) == {
        "error": "Incorrect request"
    }
    broken = client.post("/api/v2", b"--x\r\nbroken", content_type="multipart/form-data; boundary=x")
    assert body(broken)["error"] in {"Incorrect request", "Invalid API key"}
