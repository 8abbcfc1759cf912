"""schemathesis against our own OpenAPI description: no request, however malformed, gets a 500."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmpanel.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def valid_key(customer):
    from accounts.services import api_key_issue
    from tests.api.conftest import fund
    from tests.factories import RouteFactory

    fund(customer)
    RouteFactory()
    return api_key_issue(user=customer)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_500(case, valid_key, settings_override):
    response = case.call()
    assert response.status_code < 500, response.text
    if isinstance(case.body, dict):
        # The same request again with a real key reaches the actions themselves.
        case.body = {**case.body, "key": valid_key}
        response = case.call()
        assert response.status_code < 500, response.text
        if response.status_code == 200:
            assert isinstance(json.loads(response.text), dict | list)


@pytest.fixture
def settings_override(settings):
    # Requests go straight to the WSGI app; like Django's test client, keep the test's
    # database connection (and its transaction) open between them.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Fuzzing sends many requests from one address with one key: no rate limit here.
    settings.API_RATE_LIMIT_PER_KEY = "100000/m"
    settings.API_RATE_LIMIT_INVALID_KEY = "100000/m"
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# --- Hostile values on top of schema-generated requests ------------------------------------------------
# What Python's int() or Decimal() read but a person does not write, text no field can hold,
# and one order named many times: mixed into requests that the schema generates.
HOSTILE_ATOMS = [
    "²",
    "1²",
    "١",
    "١٠٠",
    "１２",
    "৩",
    "1_0",
    "+1",
    "-1",
    " 1 ",
    "0" * 40 + "1",
    "9" * 30,
    "1e400",
    "40,040,0040",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\u202e",
]
UNSTORABLE = ("\x00", "\ud800", "\udfff")
hostile_text = st.lists(st.sampled_from(HOSTILE_ATOMS) | st.text(max_size=4), min_size=1, max_size=3).map("".join)
OPERATION = schema["/api/v2"]["POST"]
FIELDS = sorted(OPERATION.definition.raw["requestBody"]["content"]["application/json"]["schema"]["properties"])


def _json(params, *, nest, depth):
    """The JSON object text, with the value of `nest` inside `depth` lists (written by hand:
    json.dumps itself cannot go that deep)."""
    parts = []
    for k, v in params.items():
        value = json.dumps(v)
        if k == nest and depth:
            value = "[" * depth + value + "]" * depth
        parts.append(f"{json.dumps(k)}:{value}")
    return "{" + ",".join(parts) + "}"


def _form(params):
    # A lone surrogate travels as its UTF-8-style bytes, %ED%A0%80, as a hostile client sends it.
    return "&".join(
        f"{quote(str(k), safe='', errors='surrogatepass')}={quote(str(v), safe='', errors='surrogatepass')}"
        for k, v in params.items()
    )


@pytest.mark.django_db
@given(
    case=OPERATION.as_strategy(),
    replaced=st.dictionaries(st.sampled_from(FIELDS), hostile_text, min_size=1, max_size=4),
    depth=st.sampled_from([0, 0, 0, 2, 50, 3000, 20000]),
    as_json=st.booleans(),
)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_hostile_values_get_the_protocols_error_never_a_500(
    client, valid_key, settings_override, case, replaced, depth, as_json
):
    from orders.models import Order

    params = dict(case.body) if isinstance(case.body, dict) else {}
    params.update({"key": valid_key, "action": params.get("action") or "add", **replaced})
    if "key" in replaced:
        params["key"] = valid_key + replaced["key"]
    orders_before = Order.objects.count()
    if as_json:
        body = _json(params, nest="quantity", depth=depth)
        response = client.post("/api/v2", body, content_type="application/json")
    else:
        response = client.post("/api/v2", _form(params), content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 429), response.content[:300]
    reply = json.loads(response.content)
    unstorable = any(ch in str(k) + str(v) for k, v in params.items() for ch in UNSTORABLE)
    if unstorable or (as_json and depth > 1 and "quantity" in params):
        assert reply == {"error": "Incorrect request"}
    if params["action"] == "add" and any(name in replaced for name in ("service", "quantity")):
        hostile_numbers = {replaced.get("service", ""), replaced.get("quantity", "")} - {""}
        if not any(value.strip(" ").isascii() and value.strip(" ").isdigit() for value in hostile_numbers):
            assert Order.objects.count() == orders_before, (params, reply)
