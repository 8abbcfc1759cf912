"""The provider client against the project's simulator over real HTTP: every action in
normal and dialect mode, and every fault mode classified as DESIGN.md needs it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.client import NotSent, ProviderClient, Rejected, UnknownOutcome


def client_for(sim, *, read_timeout=5.0, key="test-key"):
    return ProviderClient(
        url=sim.url, key=key, connect_timeout=2.0, read_timeout=read_timeout, allow_private_addresses=True
    )


def first_of(services, type_name, **flags):
    for s in services:
        if s.type == type_name and all(getattr(s, k) == v for k, v in flags.items()):
            return s
    raise AssertionError(f"no {type_name} service with {flags}")


@pytest.fixture(params=[False, True], ids=["normal", "dialect"])
def sim(request, make_simulator):
    return make_simulator(dialect=request.param)


def test_every_action_single_and_bulk(sim):
    client = client_for(sim)
    services = client.services()
    assert {s.type for s in services} >= {"Default", "Package", "Custom Comments", "Subscriptions", "Poll"}
    assert all(isinstance(s.rate, Decimal) for s in services)
    default = first_of(services, "Default", refill=True, cancel=True)
    start = client.balance()
    assert start.currency == "USD" and start.balance == Decimal("1000000.00000")

    a = client.add(service=default.service_id, link="https://instagram.com/p/a", quantity=default.min_quantity)
    b = client.add(service=default.service_id, link="https://instagram.com/p/b", quantity=default.min_quantity)
    assert a.isdigit() and b.isdigit() and a != b
    assert client.balance().balance < start.balance
    single = client.status(a)
    assert single.status == "Pending" and single.remains == default.min_quantity
    sim.advance(steps=1)
    many = client.statuses([a, b, "999999"])
    assert many[a].status == "In progress" and many[b].status == "In progress"
    assert isinstance(many["999999"], Rejected) and many["999999"].message == "Incorrect order ID"

    cancels = client.cancel([b, "999999"])
    assert cancels[b] is True and isinstance(cancels["999999"], Rejected)
    sim.advance_all()
    assert client.status(a).status == "Completed"
    assert client.status(b).status == "Canceled"

    refill = client.refill(a)
    assert client.refill_status(refill) == "Pending"
    refills = client.refills([a, b])
    assert isinstance(refills[a], Rejected) and isinstance(refills[b], Rejected)  # one open refill; b canceled
    sim.advance_all()
    statuses = client.refill_statuses([refill, "999999"])
    assert statuses[refill] == "Completed" and isinstance(statuses["999999"], Rejected)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"service": "999999", "link": "https://x.io", "quantity": 100}, "Incorrect service ID"),
        ({"link": "", "quantity": 100}, "Incorrect link"),
        ({"link": "https://x.io", "quantity": 1}, "Quantity less than minimal"),
        ({"link": "https://x.io", "quantity": 10**9}, "Quantity more than maximum"),
    ],
)
def test_add_errors_are_rejected_in_both_dialects(sim, fields, message):
    client = client_for(sim)
    default = first_of(client.services(), "Default")
    with pytest.raises(Rejected) as exc:
        client.add(**{"service": default.service_id, **fields})
    assert exc.value.message.startswith(message)
    assert sim.adds_total() == 0


def test_not_enough_funds_is_provider_side(sim):
    client = client_for(sim)
    default = first_of(client.services(), "Default")
    sim.set_balance("test-key", "0")
    with pytest.raises(Rejected) as exc:
        client.add(service=default.service_id, link="https://x.io/p", quantity=default.min_quantity)
    assert exc.value.message == "Not enough funds on balance" and exc.value.is_provider_side


def test_every_service_type_can_be_ordered(simulator):
    client = client_for(simulator)
    extra = {
        "Default": {"link": "https://x.io/1", "quantity": None},
        "Package": {"link": "https://x.io/2"},
        "SEO": {"link": "https://x.io/3", "quantity": None, "keywords": ["a", "b"]},
        "Custom Comments": {"link": "https://x.io/4", "comments": None},
        "Custom Comments Package": {"link": "https://x.io/5", "comments": ["one", "two"]},
        "Mentions": {"link": "https://x.io/6", "quantity": None, "usernames": ["u1", "u2"]},
        "Mentions with Hashtags": {"link": "https://x.io/7", "quantity": None, "usernames": ["u1"], "hashtags": ["#h"]},
        "Mentions Custom List": {"link": "https://x.io/8", "usernames": None},
        "Mentions Hashtag": {"link": "https://x.io/9", "quantity": None, "hashtag": "#tag"},
        "Mentions User Followers": {"link": "https://x.io/10", "quantity": None, "username": "someone"},
        "Mentions Media Likers": {"link": "https://x.io/11", "quantity": None, "media": "https://x.io/m"},
        "Comment Likes": {"link": "https://x.io/12", "quantity": None, "username": "owner"},
        "Poll": {"link": "https://x.io/13", "quantity": None, "answer_number": "2"},
        "Comment Replies": {"link": "https://x.io/14", "username": "owner", "comments": None},
        "Invites from Groups": {"link": "https://x.io/15", "quantity": None, "groups": ["g1", "g2"]},
        "Subscriptions": {"username": "someone", "min": None, "max": None, "delay": "30", "posts": "5"},
        "Web Traffic": {
            "link": "https://x.io/16",
            "quantity": None,
            "country": "US",
            "device": "1",
            "type_of_traffic": "1",
        },
    }
    services = client.services()
    for type_name, fields in extra.items():
        service = first_of(services, type_name)
        lines = [f"line {i}" for i in range(max(service.min_quantity, 1))]
        params = {
            k: (
                service.min_quantity
                if k in {"quantity", "min"}
                else service.min_quantity
                if k == "max"
                else lines
                if v is None
                else v
            )
            for k, v in fields.items()
        }
        order_id = client.add(service=service.service_id, **params)
        assert client.status(order_id).status == "Pending", type_name
    assert simulator.adds_total() == len(extra)


# --- Faults ---------------------------------------------------------------------------------
AFTER_RECORDING = ["http502_html", "http200_html", "truncated_json", "empty_object", "close"]


def _order(client):
    default = first_of(client.services(), "Default")
    return default, {"service": default.service_id, "link": "https://x.io/fault", "quantity": default.min_quantity}


@pytest.mark.parametrize("mode", AFTER_RECORDING)
def test_garbage_after_add_is_unknown_and_bought_once(simulator, mode):
    client = client_for(simulator)
    default, params = _order(client)
    simulator.set_fault(mode, action="add")
    with pytest.raises(UnknownOutcome):
        client.add(**params)
    assert simulator.add_count(int(default.service_id), "https://x.io/fault", default.min_quantity) == 1


def test_hang_after_add_is_unknown_after_read_timeout(simulator):
    client = client_for(simulator, read_timeout=0.5)
    default, params = _order(client)
    simulator.set_fault("hang_after_add", hang_seconds=5)
    with pytest.raises(UnknownOutcome):
        client.add(**params)
    assert simulator.adds_total() == 1


def test_rate_limit_is_not_sent_and_nothing_bought(simulator):
    client = client_for(simulator)
    _, params = _order(client)
    simulator.set_fault("http429", action="add")
    with pytest.raises(NotSent):
        client.add(**params)
    assert simulator.adds_total() == 0


def test_refused_connection_is_not_sent_then_recovers(simulator):
    client = client_for(simulator)
    _, params = _order(client)
    simulator.refuse()
    with pytest.raises(NotSent):
        client.add(**params)
    simulator.recover()
    assert client.add(**params).isdigit()
    assert simulator.adds_total() == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Not enough funds on balance", "Not enough funds on balance"),
        ("neworder.error.not_enough_funds", "Not enough funds on balance"),
        ("neworder.error.link", "Incorrect link"),
    ],
)
def test_error_fault_is_rejected_with_normalised_text(simulator, text, expected):
    client = client_for(simulator)
    _, params = _order(client)
    simulator.set_fault("error", action="add", text=text)
    with pytest.raises(Rejected) as exc:
        client.add(**params)
    assert exc.value.message == expected
    assert simulator.adds_total() == 0


@pytest.mark.parametrize("mode", ["http502_html", "http200_html", "truncated_json", "empty_object", "close", "http429"])
def test_faults_on_status_never_look_like_a_status(simulator, mode):
    client = client_for(simulator)
    _, params = _order(client)
    order_id = client.add(**params)
    simulator.set_fault(mode, action="status")
    try:
        result = client.statuses([order_id])
    except (UnknownOutcome, NotSent):
        return
    # `{}` parses, but no id in it is a status: each one is unknown, never "canceled".
    assert isinstance(result[order_id], UnknownOutcome)


def test_latency_is_survived_within_the_read_timeout(simulator):
    client = client_for(simulator, read_timeout=2)
    simulator.set_latency(200)
    assert client.balance().balance > 0
