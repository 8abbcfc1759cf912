"""The provider simulator over real HTTP: API v2 shapes, progression, faults, dialect, control."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from kernel import protocol as p
from kernel.money import charge_for, refund_for_remains
from simulators.provider import Simulator, from_options, generate_catalogue

KEY = "test-key"
LINK = "https://instagram.com/p/abc"
START = Decimal("1000000.00000")
ROOT = Path(__file__).resolve().parents[2]


def post(sim: Simulator, **params: Any) -> requests.Response:
    return requests.post(sim.url, data={"key": KEY, **params}, timeout=5)


def call(sim: Simulator, **params: Any) -> Any:
    response = post(sim, **params)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def control(sim: Simulator, *commands: dict[str, Any]) -> list[Any]:
    response = requests.post(sim.control_url, json=list(commands), timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    return response.json()["results"]


def add_default(sim: Simulator, *, rate: str = "2.00", **flags: Any) -> int:
    return sim.add_service(name="Test Followers", rate=rate, min=10, max=10000, **flags)


def place(sim: Simulator, service: int, quantity: int = 100, link: str = LINK) -> int:
    answer = call(sim, action="add", service=service, link=link, quantity=quantity)
    assert isinstance(answer["order"], int), answer
    return answer["order"]


def balance(sim: Simulator) -> Decimal:
    return Decimal(call(sim, action="balance")["balance"])


# --- transport -------------------------------------------------------------------------
def test_post_form_answers_compact_json(simulator: Simulator) -> None:
    response = post(simulator, action="nope")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.text == '{"error":"Incorrect request"}'


def test_trailing_slash_is_served_without_redirect(simulator: Simulator) -> None:
    response = requests.post(
        simulator.url + "/", data={"key": KEY, "action": "balance"}, timeout=5, allow_redirects=False
    )
    assert response.status_code == 200
    assert response.json() == {"balance": "1000000.00000", "currency": "USD"}


def test_get_query_is_accepted(simulator: Simulator) -> None:
    response = requests.get(simulator.url, params={"key": KEY, "action": "balance"}, timeout=5)
    assert response.json() == {"balance": "1000000.00000", "currency": "USD"}


def test_json_body_is_accepted_with_lists(simulator: Simulator) -> None:
    service = simulator.add_service(name="Comments", type="Custom Comments", min=1, max=100)
    body = {"key": KEY, "action": "add", "service": service, "link": LINK, "comments": ["one", "two", "three"]}
    order = requests.post(simulator.url, json=body, timeout=5).json()["order"]
    assert simulator.order(order)["quantity"] == 3
    status = requests.post(simulator.url, json={"key": KEY, "action": "status", "orders": [order, 999]}, timeout=5)
    assert set(status.json()) == {str(order), "999"}


def test_body_wins_over_query(simulator: Simulator) -> None:
    response = requests.post(
        simulator.url, params={"key": "wrong", "action": "nope"}, data={"key": KEY, "action": "balance"}, timeout=5
    )
    assert response.json()["balance"] == "1000000.00000"


def test_form_encoding_plus_and_newlines(simulator: Simulator) -> None:
    service = simulator.add_service(name="Comments", type="Custom Comments", min=1, max=100)
    body = f"key={KEY}&action=add&service={service}&link={LINK}&comments=very+nice%0Agreat%2C+really%0Awow"
    response = requests.post(
        simulator.url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5
    )
    order = response.json()["order"]
    assert simulator.order(order)["fields"]["comments"] == "very nice\ngreat, really\nwow"
    assert simulator.order(order)["quantity"] == 3


def test_envelope_errors(simulator: Simulator) -> None:
    assert call(simulator, action="") == {"error": p.ERR_INCORRECT_REQUEST}
    assert requests.post(simulator.url, data={"key": KEY}, timeout=5).json() == {"error": p.ERR_INCORRECT_REQUEST}
    assert requests.post(simulator.url, data={"action": "balance"}, timeout=5).json() == {"error": p.ERR_INVALID_KEY}
    assert requests.post(simulator.url, data={"key": "nope", "action": "services"}, timeout=5).json() == {
        "error": p.ERR_INVALID_KEY
    }


def test_demo_key_exists_by_default(simulator: Simulator) -> None:
    answer = requests.post(simulator.url, data={"key": "demo-provider-key", "action": "balance"}, timeout=5).json()
    assert answer == {"balance": "1000000.00000", "currency": "USD"}


def test_unknown_path_is_404_and_huge_body_413(make_simulator: Any) -> None:
    sim = make_simulator(max_body_bytes=1000)
    assert requests.post(sim.url.replace("/api/v2", "/api/v1"), data={"key": KEY}, timeout=5).status_code == 404
    response = requests.post(sim.url, data={"key": KEY, "action": "balance", "pad": "x" * 2000}, timeout=5)
    assert response.status_code == 413
    assert sim.adds_total() == 0


# --- services ----------------------------------------------------------------------------
def test_services_shape_and_every_type_covered(simulator: Simulator) -> None:
    services = call(simulator, action="services")
    assert len(services) == 40
    for item in services:
        assert list(item)[:10] == [
            "service",
            "name",
            "type",
            "category",
            "rate",
            "min",
            "max",
            "refill",
            "cancel",
            "dripfeed",
        ]
        assert isinstance(item["service"], int)
        assert isinstance(item["rate"], str) and Decimal(item["rate"]) > 0
        assert isinstance(item["min"], str) and isinstance(item["max"], str)
        assert int(item["min"]) <= int(item["max"])
        assert all(isinstance(item[flag], bool) for flag in ("refill", "cancel", "dripfeed"))
        assert item["desc"]
    assert {item["type"] for item in services} == {t.name for t in p.SERVICE_TYPES}
    for flag in ("refill", "cancel", "dripfeed"):
        assert {item[flag] for item in services} == {True, False}
    assert "Instagram Followers" in {item["category"] for item in services}
    assert len({item["service"] for item in services}) == 40


def test_catalogue_is_deterministic_per_seed_and_scales() -> None:
    assert generate_catalogue(40, seed=7) == generate_catalogue(40, seed=7)
    assert generate_catalogue(40, seed=7) != generate_catalogue(40, seed=8)
    big = generate_catalogue(5000, seed=3)
    assert len({s.id for s in big}) == 5000
    assert {s.type for s in big} == {t.name for t in p.SERVICE_TYPES}


def test_services_count_option_over_http(make_simulator: Any) -> None:
    sim = make_simulator(services=5000)
    services = call(sim, action="services")
    assert len(services) == 5000
    assert services[-1]["service"] == 5000


def test_control_changes_the_catalogue(simulator: Simulator) -> None:
    hostile = '<script>alert(1)</script> & "quotes"'
    control(
        simulator,
        {"cmd": "set_service", "service": 1, "rate": "9.8765", "name": hostile},
        {"cmd": "remove_service", "service": 2},
    )
    new_id = control(
        simulator, {"cmd": "add_service", "name": "New", "type": "Poll", "rate": "1.5", "min": 5, "max": 50}
    )[0]
    services = {item["service"]: item for item in call(simulator, action="services")}
    assert services[1]["name"] == hostile
    assert services[1]["rate"] == "9.8765"
    assert 2 not in services
    assert services[new_id]["type"] == "Poll"
    assert (services[new_id]["rate"], services[new_id]["min"], services[new_id]["max"]) == ("1.5", "5", "50")
    answer = call(simulator, action="add", service=2, link=LINK, quantity=1)
    assert answer == {"error": p.ERR_INCORRECT_SERVICE}


# --- add: every type ---------------------------------------------------------------------
# type -> (fields, quantity the order should have)
VALID_ADDS: dict[str, tuple[dict[str, str], int]] = {
    "Default": ({"link": LINK, "quantity": "100"}, 100),
    "Package": ({"link": LINK}, 1),
    "SEO": ({"link": LINK, "quantity": "100", "keywords": "smm panel\ncheap likes"}, 100),
    "Custom Comments": ({"link": LINK, "comments": "nice\ngreat\nwow"}, 3),
    "Custom Comments Package": ({"link": LINK, "comments": "nice\ngreat"}, 1),
    "Mentions": ({"link": LINK, "quantity": "100", "usernames": "ann\nbob"}, 100),
    "Mentions with Hashtags": ({"link": LINK, "quantity": "100", "usernames": "ann\nbob", "hashtags": "#a\n#b"}, 100),
    "Mentions Custom List": ({"link": LINK, "usernames": "ann\nbob\ncid\ndan"}, 4),
    "Mentions Hashtag": ({"link": LINK, "quantity": "100", "hashtag": "#smm"}, 100),
    "Mentions User Followers": ({"link": LINK, "quantity": "100", "username": "someone"}, 100),
    "Mentions Media Likers": ({"link": LINK, "quantity": "100", "media": "https://instagram.com/p/xyz"}, 100),
    "Comment Likes": ({"link": LINK, "quantity": "100", "username": "commenter"}, 100),
    "Poll": ({"link": LINK, "quantity": "100", "answer_number": "2"}, 100),
    "Comment Replies": ({"link": LINK, "username": "commenter", "comments": "first, second"}, 2),
    "Invites from Groups": ({"link": LINK, "quantity": "100", "groups": "group1\ngroup2"}, 100),
    "Subscriptions": (
        {"username": "someone", "min": "10", "max": "100", "delay": "30", "posts": "5", "expiry": "31/12/2030"},
        500,  # max × posts
    ),
    "Web Traffic": (
        {
            "link": LINK,
            "quantity": "100",
            "country": "US",
            "device": "1",
            "type_of_traffic": "1",
            "google_keyword": "smm",
        },
        100,
    ),
}


def test_valid_adds_cover_every_type() -> None:
    assert set(VALID_ADDS) == {t.name for t in p.SERVICE_TYPES}


def type_service(sim: Simulator, type_name: str) -> int:
    packaged = type_name in ("Package", "Custom Comments Package")
    return sim.add_service(
        name=f"Test {type_name}", type=type_name, rate="3.00", min=1 if packaged else 2, max=1 if packaged else 1000
    )


@pytest.mark.parametrize("type_name", list(VALID_ADDS))
def test_add_every_type(simulator: Simulator, type_name: str) -> None:
    service = type_service(simulator, type_name)
    fields, quantity = VALID_ADDS[type_name]
    answer = call(simulator, action="add", service=service, **fields)
    assert list(answer) == ["order"] and isinstance(answer["order"], int)
    # API_V2.md, "What an order costs": packages at the rate, everything else per 1000.
    packaged = type_name in ("Package", "Custom Comments Package")
    charge = Decimal("3.00000") if packaged else charge_for(rate_per_1000=Decimal("3.00"), quantity=quantity)
    assert balance(simulator) == START - charge
    status = call(simulator, action="status", order=answer["order"])
    assert status == {
        "charge": f"{charge:f}",
        "start_count": "0",
        "status": "Pending",
        "remains": str(quantity),
        "currency": "USD",
    }
    link_key = fields.get("link", fields.get("username"))
    assert simulator.add_count(service, link_key, quantity) == 1
    assert simulator.adds_total() == 1


def missing_field_cases() -> list[tuple[str, str, str]]:
    cases = []
    for stype in p.SERVICE_TYPES:
        for name in stype.required:
            if name == "link":
                expected = p.ERR_INCORRECT_LINK
            elif name in ("quantity", stype.quantity_from, "min"):
                expected = p.err_min_quantity(2)
            elif name == "max":
                expected = p.err_max_quantity(1000)
            else:
                expected = p.field_error(name)
            cases.append((stype.name, name, expected))
    return cases


@pytest.mark.parametrize(("type_name", "missing", "expected"), missing_field_cases())
def test_add_without_a_required_field_is_rejected(
    simulator: Simulator, type_name: str, missing: str, expected: str
) -> None:
    service = type_service(simulator, type_name)
    fields = {k: v for k, v in VALID_ADDS[type_name][0].items() if k != missing}
    assert call(simulator, action="add", service=service, **fields) == {"error": expected}
    assert balance(simulator) == START
    assert simulator.adds_total() == 0
    assert simulator.summary()["orders"] == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"quantity": "9"}, "Quantity less than minimal 10"),
        ({"quantity": "10001"}, "Quantity more than maximum 10000"),
        ({"quantity": "abc"}, "Quantity less than minimal 10"),
        ({"link": ""}, p.ERR_INCORRECT_LINK),
        ({"link": "https://x.com/a b"}, p.ERR_INCORRECT_LINK),
        ({"service": "999999"}, p.ERR_INCORRECT_SERVICE),
        ({"service": "abc"}, p.ERR_INCORRECT_SERVICE),
        ({"runs": "3", "interval": "10"}, "Drip-feed is disabled for this service"),
    ],
)
def test_add_validation_errors(simulator: Simulator, fields: dict[str, str], expected: str) -> None:
    service = add_default(simulator)
    params = {"service": str(service), "link": LINK, "quantity": "100", **fields}
    assert call(simulator, action="add", **params) == {"error": expected}
    assert balance(simulator) == START
    assert simulator.adds_total() == 0


def test_list_types_check_the_list_length_against_min_and_max(simulator: Simulator) -> None:
    service = simulator.add_service(name="Comments", type="Custom Comments", min=2, max=3)
    assert call(simulator, action="add", service=service, link=LINK, comments="one") == {"error": p.err_min_quantity(2)}
    too_many = "\n".join(["a", "b", "c", "d"])
    assert call(simulator, action="add", service=service, link=LINK, comments=too_many) == {
        "error": p.err_max_quantity(3)
    }


def test_subscription_checks(simulator: Simulator) -> None:
    service = type_service(simulator, "Subscriptions")
    good = VALID_ADDS["Subscriptions"][0]
    for change, expected in (
        ({"delay": "7"}, "Incorrect delay"),
        ({"max": "5000"}, p.err_max_quantity(1000)),
        ({"min": "1"}, p.err_min_quantity(2)),
        ({"expiry": "2030-12-31"}, "Incorrect expiry"),
        ({"min": "500", "max": "100"}, p.field_error("max")),
    ):
        assert call(simulator, action="add", service=service, **{**good, **change}) == {"error": expected}
    assert simulator.adds_total() == 0


def test_dripfeed_charges_runs_times_quantity(simulator: Simulator) -> None:
    service = add_default(simulator, dripfeed=True)
    order = call(simulator, action="add", service=service, link=LINK, quantity=100, runs=3, interval=10)["order"]
    assert simulator.order(order)["quantity"] == 300
    assert (simulator.order(order)["runs"], simulator.order(order)["interval"]) == (3, 10)
    assert balance(simulator) == START - Decimal("0.60000")
    assert call(simulator, action="add", service=service, link=LINK, quantity=100, runs=0, interval=10) == {
        "error": "Incorrect runs"
    }


def test_not_enough_funds_changes_nothing(simulator: Simulator) -> None:
    service = add_default(simulator, rate="100")
    simulator.set_balance(KEY, "0.99999")
    assert call(simulator, action="add", service=service, link=LINK, quantity=10) == {"error": p.ERR_NOT_ENOUGH_FUNDS}
    assert call(simulator, action="balance")["balance"] == "0.99999"
    assert simulator.adds_total() == 0
    simulator.set_balance(KEY, "1")
    place(simulator, service, quantity=10)
    assert call(simulator, action="balance")["balance"] == "0.00000"


def test_duplicate_guard(simulator: Simulator) -> None:
    service = add_default(simulator)
    place(simulator, service)
    place(simulator, service)  # off by default
    simulator.set_duplicate_guard(True)
    assert call(simulator, action="add", service=service, link=LINK, quantity=100) == {"error": p.ERR_DUPLICATE_LINK}
    place(simulator, service, link=LINK + "2")
    simulator.advance_all()
    place(simulator, service)
    assert simulator.add_count(service, LINK, 100) == 3


def test_orders_are_per_key(simulator: Simulator) -> None:
    service = add_default(simulator)
    order = place(simulator, service)
    simulator.add_key("other", balance="5")
    answer = requests.post(simulator.url, data={"key": "other", "action": "status", "order": order}, timeout=5).json()
    assert answer == {"error": p.ERR_INCORRECT_ORDER}


# --- status --------------------------------------------------------------------------------
def test_status_single_and_bulk(simulator: Simulator) -> None:
    service = add_default(simulator)
    first, second = place(simulator, service), place(simulator, service, quantity=200)
    assert call(simulator, action="status", order=12345) == {"error": p.ERR_INCORRECT_ORDER}
    assert call(simulator, action="status", order="abc") == {"error": p.ERR_INCORRECT_ORDER}
    bulk = call(simulator, action="status", orders=f"{first},999,{second}")
    assert list(bulk) == [str(first), "999", str(second)]
    assert bulk["999"] == {"error": p.ERR_INCORRECT_ORDER}
    assert bulk[str(second)]["remains"] == "200"
    assert bulk[str(second)]["charge"] == "0.40000"


def test_status_takes_at_most_100_ids(simulator: Simulator) -> None:
    service = add_default(simulator)
    ids = [place(simulator, service, quantity=10) for _ in range(3)]
    hundred = ",".join(str(i) for i in [*ids, *range(1000, 1097)])
    answer = call(simulator, action="status", orders=hundred)
    assert len(answer) == 100
    assert answer[str(ids[0])]["status"] == "Pending"
    assert call(simulator, action="status", orders=hundred + ",5000") == {"error": p.ERR_TOO_MANY_IDS}


# --- progression -----------------------------------------------------------------------------
def test_advance_steps_through_in_progress_to_completed(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator))
    simulator.advance(steps=1)
    status = call(simulator, action="status", order=order)
    assert status["status"] == "In progress"
    assert int(status["start_count"]) > 0
    simulator.advance_all()
    status = call(simulator, action="status", order=order)
    assert (status["status"], status["remains"]) == ("Completed", "0")
    assert balance(simulator) == START - Decimal("0.20000")


def test_orders_progress_on_their_own(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator))
    simulator.set_speed(0.02)
    deadline = time.monotonic() + 3
    while call(simulator, action="status", order=order)["status"] != "Completed":
        assert time.monotonic() < deadline, "the order never completed"
        time.sleep(0.02)


def test_forced_partial_refunds_the_remains(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator, rate="3.33"), quantity=100)
    control(simulator, {"cmd": "force_status", "order": order, "status": "Partial", "remains": 40})
    status = call(simulator, action="status", order=order)
    assert (status["status"], status["remains"], status["charge"]) == ("Partial", "40", "0.33300")
    refund = refund_for_remains(charge=Decimal("0.33300"), remains=40, quantity=100)
    assert balance(simulator) == START - Decimal("0.33300") + refund


def test_forced_cancel_refunds_everything_once(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator))
    simulator.force_status(order, "Canceled")
    simulator.force_status(order, "Canceled")
    simulator.advance_all()
    assert call(simulator, action="status", order=order)["status"] == "Canceled"
    assert balance(simulator) == START


def test_set_outcome_is_reached_through_in_progress(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator))
    simulator.set_outcome(order, "Partial", remains=30)
    simulator.advance(steps=1)
    assert call(simulator, action="status", order=order)["status"] == "In progress"
    simulator.advance_all()
    assert call(simulator, action="status", order=order)["remains"] == "30"


def test_natural_outcomes_are_deterministic_and_refunded(make_simulator: Any) -> None:
    finals = []
    for _ in range(2):
        sim = make_simulator(seed=5, partial=0.3, canceled=0.2)
        service = add_default(sim)
        quantities = {place(sim, service, quantity=100 + i): 100 + i for i in range(60)}
        sim.advance_all()
        statuses = call(sim, action="status", orders=",".join(map(str, quantities)))
        finals.append(statuses)
        kinds = {s["status"] for s in statuses.values()}
        assert kinds == {"Completed", "Partial", "Canceled"}
        expected = START
        for order, s in statuses.items():
            charge, remains, quantity = Decimal(s["charge"]), int(s["remains"]), quantities[int(order)]
            assert charge == charge_for(rate_per_1000=Decimal("2.00"), quantity=quantity)
            expected -= charge
            if s["status"] == "Canceled":
                expected += charge
            elif s["status"] == "Partial":
                assert 0 < remains < quantity
                expected += refund_for_remains(charge=charge, remains=remains, quantity=quantity)
            else:
                assert remains == 0
        assert balance(sim) == expected
    assert finals[0] == finals[1]


# --- refill ---------------------------------------------------------------------------------
def test_refill_single_and_status(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator, refill=True))
    assert call(simulator, action="refill", order=order) == {"error": "Refill is available only for completed orders"}
    simulator.advance_all()
    answer = call(simulator, action="refill", order=order)
    assert answer == {"refill": "1"}
    assert call(simulator, action="refill", order=order) == {"error": "A refill for this order is already in progress"}
    assert call(simulator, action="refill_status", refill=1) == {"status": "Pending"}
    simulator.advance(steps=1)
    assert call(simulator, action="refill_status", refill=1) == {"status": "In progress"}
    simulator.advance_all()
    assert call(simulator, action="refill_status", refill=1) == {"status": "Completed"}
    assert call(simulator, action="refill_status", refill=77) == {"error": p.ERR_REFILL_NOT_FOUND}
    assert call(simulator, action="refill", order=order) == {"refill": "2"}
    simulator.force_refill_status(2, "Rejected")
    assert call(simulator, action="refill_status", refill=2) == {"status": "Rejected"}


def test_refill_bulk_keeps_request_order(simulator: Simulator) -> None:
    with_refill = add_default(simulator, refill=True)
    without = add_default(simulator, refill=False)
    a, b = place(simulator, with_refill), place(simulator, without)
    simulator.advance_all()
    answer = call(simulator, action="refill", orders=f"999,{a},{b}")
    assert answer == [
        {"order": 999, "refill": {"error": p.ERR_INCORRECT_ORDER}},
        {"order": a, "refill": 1},
        {"order": b, "refill": {"error": "Refill is disabled for this service"}},
    ]
    assert call(simulator, action="refill_status", refills="1,5") == [
        {"refill": 1, "status": "Pending"},
        {"refill": 5, "status": {"error": p.ERR_REFILL_NOT_FOUND}},
    ]


# --- cancel ---------------------------------------------------------------------------------
def test_cancel_bulk_shape_and_refund(simulator: Simulator) -> None:
    cancelable = add_default(simulator, cancel=True)
    fixed = add_default(simulator, cancel=False)
    a, b = place(simulator, cancelable), place(simulator, fixed)
    answer = call(simulator, action="cancel", orders=f"9999,{a},{b}")
    assert answer == [
        {"order": 9999, "cancel": {"error": p.ERR_INCORRECT_ORDER}},
        {"order": a, "cancel": 1},
        {"order": b, "cancel": {"error": "Cancel is disabled for this service"}},
    ]
    assert call(simulator, action="status", order=a)["status"] == "Pending"  # accepted, not yet done
    simulator.advance_all()
    assert call(simulator, action="status", order=a)["status"] == "Canceled"
    assert call(simulator, action="status", order=b)["status"] == "Completed"
    assert balance(simulator) == START - Decimal("0.20000")
    assert call(simulator, action="cancel", order=a) == [
        {"order": a, "cancel": {"error": "The order is already finished"}}
    ]


def test_cancel_single_uses_the_array_shape(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator, cancel=True))
    assert call(simulator, action="cancel", order=order) == [{"order": order, "cancel": 1}]


def test_cancel_resolves_on_its_own(simulator: Simulator) -> None:
    order = place(simulator, add_default(simulator, cancel=True))
    call(simulator, action="cancel", order=order)
    simulator.set_speed(0.01)
    deadline = time.monotonic() + 3
    while call(simulator, action="status", order=order)["status"] != "Canceled":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert balance(simulator) == START


# --- faults -----------------------------------------------------------------------------------
def assert_bought_once(sim: Simulator, service: int) -> None:
    assert sim.add_count(service, LINK, 100) == 1
    assert sim.adds_total() == 1
    assert sim.balance(KEY) == START - Decimal("0.20000")


def add_params(service: int) -> dict[str, Any]:
    return {"key": KEY, "action": "add", "service": service, "link": LINK, "quantity": 100}


def test_fault_http502_html_after_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("http502_html", action="add")
    response = requests.post(simulator.url, data=add_params(service), timeout=5)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert_bought_once(simulator, service)
    assert call(simulator, action="status", order=1)["status"] == "Pending"


def test_fault_http200_html_after_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("http200_html")
    response = requests.post(simulator.url, data=add_params(service), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError):
        response.json()
    assert_bought_once(simulator, service)


def test_fault_truncated_json_after_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("truncated_json", action="add")
    response = requests.post(simulator.url, data=add_params(service), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.text and '{"order":1}'.startswith(response.text) and response.text != '{"order":1}'
    with pytest.raises(ValueError):
        json.loads(response.text)
    assert_bought_once(simulator, service)


def test_fault_empty_object_after_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("empty_object", action="add")
    response = requests.post(simulator.url, data=add_params(service), timeout=5)
    assert (response.status_code, response.text) == (200, "{}")
    assert_bought_once(simulator, service)


def test_fault_close_after_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("close", action="add")
    with pytest.raises(requests.ConnectionError):
        requests.post(simulator.url, data=add_params(service), timeout=5)
    assert_bought_once(simulator, service)


def test_fault_hang_after_add_records_then_says_nothing(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("hang_after_add", hang_seconds=10)
    assert call(simulator, action="balance")["balance"] == "1000000.00000"  # only add hangs
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.post(simulator.url, data=add_params(service), timeout=(2, 0.5))
    assert time.monotonic() - started < 3
    assert_bought_once(simulator, service)
    deadline = time.monotonic() + 3
    while simulator.open_connections():  # the client gave up, so the server thread lets go
        assert time.monotonic() < deadline, "the hanging connection was never released"
        time.sleep(0.05)


def test_fault_http429_before_recording(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("http429", action="add", retry_after=7)
    response = requests.post(simulator.url, data=add_params(service), timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"error": "Too many requests"}
    assert simulator.adds_total() == 0
    assert simulator.balance(KEY) == START


@pytest.mark.parametrize("text", [p.ERR_NOT_ENOUGH_FUNDS, "neworder.error.not_enough_funds"])
def test_fault_error_before_recording(simulator: Simulator, text: str) -> None:
    service = add_default(simulator)
    control(simulator, {"cmd": "set_fault", "mode": "error", "action": "add", "text": text})
    assert requests.post(simulator.url, data=add_params(service), timeout=5).json() == {"error": text}
    assert simulator.adds_total() == 0
    assert simulator.balance(KEY) == START
    assert call(simulator, action="balance")["balance"] == "1000000.00000"


def test_fault_latency(simulator: Simulator) -> None:
    simulator.set_fault("latency", latency_ms=300, action="balance", count=1)
    started = time.monotonic()
    call(simulator, action="balance")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    call(simulator, action="balance")
    assert time.monotonic() - started < 0.3
    control(simulator, {"cmd": "set_latency", "ms": 200})
    started = time.monotonic()
    call(simulator, action="services")
    assert time.monotonic() - started >= 0.2


def test_fault_for_one_action_and_count(simulator: Simulator) -> None:
    service = add_default(simulator)
    simulator.set_fault("http502_html", action="add", count=2)
    assert call(simulator, action="balance")["currency"] == "USD"
    for _ in range(2):
        assert requests.post(simulator.url, data=add_params(service), timeout=5).status_code == 502
    assert isinstance(call(simulator, action="add", service=service, link=LINK, quantity=100)["order"], int)
    assert simulator.fault() is None
    assert simulator.add_count(service, LINK, 100) == 3


def test_fault_applies_to_other_actions(simulator: Simulator) -> None:
    simulator.set_fault("http502_html", action="status")
    response = post(simulator, action="status", order=1)
    assert response.status_code == 502
    control(simulator, {"cmd": "clear_fault"})
    assert call(simulator, action="status", order=1) == {"error": p.ERR_INCORRECT_ORDER}


def test_fault_refuse_and_recover_on_the_same_port(simulator: Simulator) -> None:
    url = simulator.url
    simulator.refuse()
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data={"key": KEY, "action": "balance"}, timeout=2)
    simulator.recover()
    assert simulator.url == url
    assert call(simulator, action="balance")["balance"] == "1000000.00000"


def test_refuse_over_http_comes_back_by_itself(simulator: Simulator) -> None:
    # Long enough that a loaded machine still asks while it refuses.
    assert control(simulator, {"cmd": "refuse", "seconds": 1.5}) == [{"refusing_for": 1.5}]
    with pytest.raises(requests.ConnectionError):
        requests.get(simulator.control_url, timeout=2)
    deadline = time.monotonic() + 8
    while True:
        try:
            assert requests.get(simulator.control_url, timeout=2).json()["mode"]["refusing"] is False
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_unknown_fault_mode_is_a_control_error(simulator: Simulator) -> None:
    response = requests.post(simulator.control_url, json={"cmd": "set_fault", "mode": "explode"}, timeout=5)
    assert response.status_code == 400
    assert "unknown fault mode" in response.json()["error"]


# --- dialect -----------------------------------------------------------------------------------
def test_dialect_shapes(make_simulator: Any) -> None:
    sim = make_simulator(dialect=True)
    item = call(sim, action="services")[0]
    assert isinstance(item["service"], str) and item["service"] == "1"
    assert isinstance(item["rate"], float)
    assert isinstance(item["min"], int) and isinstance(item["max"], int)
    assert item["refill"] in (0, 1) and not isinstance(item["refill"], bool)
    service = sim.add_service(name="X", rate="2.5", min=10, max=1000, refill=True, cancel=True)
    first = call(sim, action="add", service=service, link=LINK, quantity=100)
    second = call(sim, action="add", service=service, link=LINK + "2", quantity=100)
    assert first == {"order": "1"} and second == {"order": "2"}
    status = call(sim, action="status", order=1)
    assert status == {"charge": 0.25, "start_count": 0, "status": "Pending", "remains": 100, "currency": "USD"}
    assert call(sim, action="status", order=2)["status"] == "pending"
    sim.advance(steps=1)
    spelled = {call(sim, action="status", order=i)["status"] for i in (1, 2)}
    assert spelled == {"Inprogress", "In Progress"}
    assert {p.normalise_status(s) for s in spelled} == {p.IN_PROGRESS}
    sim.force_status(1, "Canceled")
    sim.force_status(2, "Canceled")
    canceled = {call(sim, action="status", order=i)["status"] for i in (1, 2)}
    assert canceled == {"Cancelled", "cancelled"}
    assert {p.normalise_status(s) for s in canceled} == {p.CANCELED}
    assert isinstance(call(sim, action="balance")["balance"], float)
    assert call(sim, action="cancel", orders="2") == [
        {"order": "2", "cancel": {"error": "The order is already finished"}}
    ]


def test_dialect_errors_are_raw_keys(make_simulator: Any) -> None:
    sim = make_simulator(dialect=True, duplicate_guard=True)
    service = sim.add_service(name="X", rate="2.5", min=10, max=1000)
    cases = [
        ({"service": 999, "link": LINK, "quantity": 100}, "error.incorrect_service_id"),
        ({"service": service, "link": "", "quantity": 100}, "neworder.error.link"),
        ({"service": service, "link": LINK, "quantity": 1}, "neworder.error.min_quantity"),
        ({"service": service, "link": LINK, "quantity": 5000}, "neworder.error.max_quantity"),
    ]
    for params, raw in cases:
        assert call(sim, action="add", **params) == {"error": raw}
        assert raw in p.RAW_ERROR_KEYS
    call(sim, action="add", service=service, link=LINK, quantity=100)
    assert call(sim, action="add", service=service, link=LINK, quantity=100) == {
        "error": "neworder.error.link_duplicate"
    }
    sim.set_balance(KEY, "0")
    assert call(sim, action="add", service=service, link=LINK + "x", quantity=100) == {
        "error": "neworder.error.not_enough_funds"
    }


def test_dialect_switches_at_run_time(simulator: Simulator) -> None:
    control(simulator, {"cmd": "set_dialect", "on": True})
    assert call(simulator, action="services")[0]["service"] == "1"
    control(simulator, {"cmd": "set_dialect", "on": False})
    assert call(simulator, action="services")[0]["service"] == 1


# --- control and counters ----------------------------------------------------------------------
def test_control_summary(simulator: Simulator) -> None:
    service = add_default(simulator)
    place(simulator, service)
    place(simulator, service)
    place(simulator, service, quantity=50)
    summary = requests.get(simulator.control_url, timeout=5).json()
    assert summary["orders"] == 3 and summary["active_orders"] == 3
    assert summary["adds_total"] == 3
    assert {"service": service, "link": LINK, "quantity": 100, "count": 2} in summary["add_counts"]
    assert summary["balances"][KEY] == f"{START - Decimal('0.50000'):f}"
    assert summary["mode"]["fault"] is None and summary["mode"]["dialect"] is False
    assert summary["requests"]["add"] == 3
    assert simulator.add_counts() == {(service, LINK, 100): 2, (service, LINK, 50): 1}


def test_control_commands_over_http(simulator: Simulator) -> None:
    service = add_default(simulator)
    results = control(
        simulator,
        {"cmd": "add_key", "key": "fresh", "balance": "12.5"},
        {"cmd": "set_balance", "key": KEY, "balance": "100"},
        {"cmd": "set_speed", "seconds": None},
    )
    assert results == [None, None, None]
    fresh = requests.post(simulator.url, data={"key": "fresh", "action": "balance"}, timeout=5).json()
    assert fresh == {"balance": "12.50000", "currency": "USD"}
    order = place(simulator, service)
    assert control(simulator, {"cmd": "advance"}) == [{"orders": 1, "refills": 0}]
    assert control(simulator, {"cmd": "order", "order": order})[0]["status"] == "Completed"
    control(simulator, {"cmd": "reset_counters"})
    assert simulator.adds_total() == 0 and simulator.add_counts() == {}
    control(simulator, {"cmd": "force_status", "order": order, "status": "In progress", "remains": 60})
    assert call(simulator, action="status", order=order)["remains"] == "60"
    control(simulator, {"cmd": "reset"})
    assert call(simulator, action="status", order=order) == {"error": p.ERR_INCORRECT_ORDER}


def test_control_rejects_bad_commands(simulator: Simulator) -> None:
    for body in ({"cmd": "explode"}, {"cmd": "force_status", "order": 1, "status": "Done"}, {"cmd": "set_balance"}):
        response = requests.post(simulator.control_url, json=body, timeout=5)
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert requests.post(simulator.control_url, data="not json", timeout=5).status_code == 400


def test_memory_is_bounded_by_evicting_the_oldest_finished(make_simulator: Any) -> None:
    sim = make_simulator(max_orders=5)
    service = add_default(sim)
    ids = [place(sim, service) for _ in range(4)]
    sim.force_status(ids[1], "Completed")
    ids += [place(sim, service) for _ in range(2)]
    assert sim.summary()["orders"] == 5
    assert call(sim, action="status", order=ids[1]) == {"error": p.ERR_INCORRECT_ORDER}
    assert call(sim, action="status", order=ids[0])["status"] == "Pending"
    assert sim.adds_total() == 6


def test_command_line_options_build_the_simulator(make_simulator: Any) -> None:
    options = {"fault": "http429", "fault_action": "add", "fault_count": 1, "speed": 0.5, "services": 20, "seed": 3}
    sim = from_options(options).start(port=0)
    try:
        assert sim.fault() == {**sim.fault(), "mode": "http429", "action": "add", "remaining": 1}
        assert (sim.speed, len(sim.services())) == (0.5, 20)
        response = requests.post(sim.url, data=add_params(1), timeout=5)
        assert response.status_code == 429
        assert sim.fault() is None
    finally:
        sim.stop()


# --- the management command --------------------------------------------------------------------
def test_management_command_serves_until_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "simulator", "--port", "0", "--services", "17", "--dialect"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A test runner's worker process may ignore SIGINT, and an ignored signal stays ignored
        # across exec: give the command the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v2")
        services = requests.post(url, data={"key": "demo-provider-key", "action": "services"}, timeout=5).json()
        assert len(services) == 17 and services[0]["service"] == "1"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)  # drains both pipes while waiting
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
