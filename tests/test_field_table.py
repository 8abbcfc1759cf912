"""One owner of each order field: the protocol's table. The parser, the form, the page's
field order and the API documentation derive from it, so they cannot disagree."""

from __future__ import annotations

import json

import pytest

from api import spec
from kernel import protocol
from orders.forms import NewOrderForm
from orders.services import OrderError
from orders.services.parsing import LABELS, order_request_parse
from orders.views import FIELD_ORDER
from tests.factories import ServiceFactory


def test_every_field_of_every_type_is_in_the_table() -> None:
    assert {f for t in protocol.SERVICE_TYPES for f in t.fields} == set(protocol.FIELDS)


def test_the_form_the_page_and_the_api_docs_take_every_field_from_the_table() -> None:
    form = NewOrderForm()
    for field in protocol.FIELD_SPECS:
        assert form.fields[field.name].label == field.label
        assert spec.FIELD_DESCRIPTIONS[field.name] == field.description
        assert LABELS[field.name] == field.label.split(" (")[0]
    assert set(FIELD_ORDER) == set(protocol.FIELDS) - {"runs", "interval"}
    assert list(FIELD_ORDER) == [f.name for f in protocol.FIELD_SPECS if f.name not in ("runs", "interval")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "bad"),
    [("device", "6"), ("type_of_traffic", "0"), ("answer_number", "0"), ("media", "not a link")],
)
def test_a_bad_value_is_refused_with_the_tables_error(name, bad) -> None:
    stype = next(t for t in protocol.SERVICE_TYPES if name in t.fields)
    service = ServiceFactory(type=stype.name, min_quantity=1, max_quantity=1000)
    fields = {"link": "https://x.com/a", "quantity": "10", "usernames": "a", "comments": "a"}
    fields.update({f: "1" for f in stype.required if f not in fields})
    fields["media"] = fields.get("media", "https://x.com/m")
    fields[name] = bad
    with pytest.raises(OrderError) as caught:
        order_request_parse(service=service, fields=fields)
    assert caught.value.message == protocol.field_error(name)
    assert protocol.field_error("type_of_traffic") == "Incorrect type of traffic"


@pytest.mark.parametrize(("name", "bad"), [("device", "6"), ("type_of_traffic", "0"), ("answer_number", "x")])
def test_the_simulator_answers_the_panels_error_texts(make_simulator, name, bad) -> None:
    from simulators.provider import Simulator

    sim: Simulator = make_simulator()
    stype = next(t for t in protocol.SERVICE_TYPES if name in t.fields)
    service = sim.add_service(name="t", type=stype.name, rate="1", min=1, max=1000)
    fields = {"link": "https://x.com/a", "quantity": "10", **dict.fromkeys(stype.required, "1"), name: bad}
    fields["link"] = "https://x.com/a"
    reply = sim.handle_api({"key": "test-key", "action": "add", "service": str(service), **fields})
    assert json.loads(reply) == {"error": protocol.field_error(name)}
