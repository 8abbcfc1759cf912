"""The client's single seam (HTTP) under every kind of reply, with `responses`."""

from decimal import Decimal as D

import pytest
import requests
import responses

from providers.client import NotSent, ProviderClient, Rejected, UnknownOutcome

URL = "https://provider.example/api/v2"


@pytest.fixture
def calls():
    return []


@pytest.fixture
def client(calls):
    return ProviderClient(
        url=URL, key="k", connect_timeout=1, read_timeout=1, max_response_bytes=10_000, on_call=calls.append
    )


@responses.activate
def test_add_returns_order_id_as_text_for_int_and_string(client):
    responses.post(URL, json={"order": 23501})
    responses.post(URL, json={"order": "23502"})
    assert client.add(service=1, link="https://x.io/a", quantity=100) == "23501"
    assert client.add(service=1, link="https://x.io/a", quantity=100) == "23502"
    body = responses.calls[0].request.body
    assert "action=add" in body and "key=k" in body and "quantity=100" in body


@responses.activate
def test_list_fields_are_sent_one_per_line(client):
    responses.post(URL, json={"order": 1})
    client.add(service=2, link="https://x.io/p", comments=["nice", "great pic"])
    assert "comments=nice%0Agreat+pic" in responses.calls[0].request.body


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Not enough funds on balance", "Not enough funds on balance"),
        ("neworder.error.not_enough_funds", "Not enough funds on balance"),
        ("error.incorrect_service_id", "Incorrect service ID"),
        (
            "neworder.error.link_duplicate",
            "You have active order with this link. Please wait until order being completed.",
        ),
        ("neworder.error.link", "Incorrect link"),
    ],
)
@responses.activate
def test_error_reply_is_rejected_with_normalised_message(client, calls, raw, expected):
    responses.post(URL, json={"error": raw})
    with pytest.raises(Rejected) as exc:
        client.add(service=1, link="https://x.io", quantity=10)
    assert exc.value.message == expected
    assert calls[-1].outcome == "rejected"


@responses.activate
def test_provider_side_rejections_are_marked(client):
    responses.post(URL, json={"error": "neworder.error.not_enough_funds"})
    with pytest.raises(Rejected) as exc:
        client.add(service=1, link="https://x.io", quantity=10)
    assert exc.value.is_provider_side


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(status=502, body="<html><body>Bad gateway</body></html>", content_type="text/html"),
        dict(status=200, body="<html>Checking your browser</html>", content_type="text/html"),
        dict(status=200, body='{"order": 12', content_type="application/json"),
        dict(status=200, body="{}", content_type="application/json"),
        dict(status=200, body="", content_type="application/json"),
        dict(status=500, body='{"order": 5}', content_type="application/json"),
        dict(status=200, body='{"order": null}', content_type="application/json"),
    ],
    ids=["502-html", "200-html", "truncated", "empty-object", "empty-body", "500", "null-order"],
)
@responses.activate
def test_garbage_after_add_is_unknown_outcome(client, calls, kwargs):
    responses.post(URL, **kwargs)
    with pytest.raises(UnknownOutcome):
        client.add(service=1, link="https://x.io", quantity=10)
    assert calls[-1].outcome == "unknown"


@pytest.mark.parametrize("status", [429, 301, 403, 404])
@responses.activate
def test_explicit_refusals_are_not_sent(client, status):
    responses.post(URL, status=status, body="no", headers={"Retry-After": "5"})
    with pytest.raises(NotSent):
        client.add(service=1, link="https://x.io", quantity=10)


@responses.activate
def test_connection_refused_is_not_sent(client, calls):
    responses.post(URL, body=requests.exceptions.ConnectionError("NewConnectionError: [Errno 111] Connection refused"))
    with pytest.raises(NotSent):
        client.add(service=1, link="https://x.io", quantity=10)
    assert calls[-1].outcome == "not_sent"


@responses.activate
def test_connect_timeout_is_not_sent(client):
    responses.post(URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    with pytest.raises(NotSent):
        client.add(service=1, link="https://x.io", quantity=10)


@responses.activate
def test_read_timeout_is_unknown(client):
    responses.post(URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(UnknownOutcome):
        client.add(service=1, link="https://x.io", quantity=10)


@responses.activate
def test_reset_after_sending_is_unknown(client):
    responses.post(URL, body=requests.exceptions.ConnectionError("Connection aborted. RemoteDisconnected"))
    with pytest.raises(UnknownOutcome):
        client.add(service=1, link="https://x.io", quantity=10)


@responses.activate
def test_oversized_reply_is_unknown(client):
    responses.post(URL, body="[" + ",".join(["1"] * 10_000) + "]", content_type="application/json")
    with pytest.raises(UnknownOutcome):
        client.services()


@responses.activate
def test_no_redirect_is_followed(client):
    responses.post(URL, status=302, headers={"Location": "https://elsewhere.example/api/v2"})
    with pytest.raises(NotSent):
        client.balance()
    assert len(responses.calls) == 1


@responses.activate
def test_services_tolerates_dialects_and_skips_broken_items(client):
    responses.post(
        URL,
        json=[
            {
                "service": 1,
                "name": "A",
                "type": "Default",
                "category": "C",
                "rate": "0.90",
                "min": "50",
                "max": "10000",
                "refill": True,
                "cancel": True,
            },
            {
                "service": "2",
                "name": "B",
                "type": "custom comments",
                "category": "C",
                "rate": 8,
                "min": 10,
                "max": 1500,
                "refill": 0,
                "cancel": 1,
                "dripfeed": "1",
                "desc": "d",
            },
            {"service": 3, "name": "no rate", "min": 1, "max": 2},
            {"service": 4, "name": "bad rate", "rate": "abc", "min": 1, "max": 2},
            "garbage",
        ],
    )
    a, b = client.services()
    assert (a.service_id, a.rate, a.min_quantity, a.max_quantity, a.refill, a.cancel, a.dripfeed) == (
        "1",
        D("0.90"),
        50,
        10000,
        True,
        True,
        False,
    )
    assert (b.service_id, b.type, b.rate, b.refill, b.cancel, b.dripfeed, b.description) == (
        "2",
        "Custom Comments",
        D("8"),
        False,
        True,
        True,
        "d",
    )


@responses.activate
def test_money_is_parsed_without_floats(client):
    responses.post(URL, body='{"balance": 100.84292, "currency": "USD"}', content_type="application/json")
    assert client.balance().balance == D("100.84292")


@responses.activate
def test_status_normalises_spellings(client):
    responses.post(
        URL,
        json={
            "1": {"charge": "0.27819", "start_count": "3572", "status": "Partial", "remains": "157", "currency": "USD"},
            "2": {"charge": 1.5, "start_count": 10, "status": "Inprogress", "remains": 5},
            "3": {"status": "Cancelled", "remains": "100"},
            "4": {"error": "Incorrect order ID"},
            "5": {"status": "teleported"},
        },
    )
    result = client.statuses(["1", "2", "3", "4", "5", "6"])
    assert (result["1"].status, result["1"].remains, result["1"].charge, result["1"].start_count) == (
        "Partial",
        157,
        D("0.27819"),
        3572,
    )
    assert result["2"].status == "In progress" and result["2"].charge == D("1.5")
    assert result["3"].status == "Canceled"
    assert isinstance(result["4"], Rejected) and result["4"].message == "Incorrect order ID"
    assert isinstance(result["5"], UnknownOutcome)
    assert isinstance(result["6"], UnknownOutcome)  # missing from the reply: unknown, never "canceled"


@responses.activate
def test_missing_remains_is_none_not_zero(client):
    responses.post(URL, json={"status": "Completed"})
    assert client.status("1").remains is None


def test_more_than_100_ids_is_refused_before_sending(client):
    with pytest.raises(ValueError):
        client.statuses([str(i) for i in range(101)])


@responses.activate
def test_bulk_refill_cancel_and_refill_status_shapes(client):
    responses.post(URL, json=[{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": "Incorrect order ID"}}])
    responses.post(
        URL, json=[{"refill": 1, "status": "Completed"}, {"refill": 2, "status": {"error": "Refill not found"}}]
    )
    responses.post(URL, json=[{"order": 9, "cancel": {"error": "Incorrect order ID"}}, {"order": 2, "cancel": 1}])
    refills = client.refills(["1", "3"])
    assert refills["1"] == "1" and isinstance(refills["3"], Rejected)
    statuses = client.refill_statuses(["1", "2"])
    assert statuses["1"] == "Completed" and isinstance(statuses["2"], Rejected)
    cancels = client.cancel(["9", "2"])
    assert cancels["2"] is True and isinstance(cancels["9"], Rejected)


@responses.activate
def test_key_is_never_recorded(client, calls):
    responses.post(URL, json={"balance": "1", "currency": "USD"})
    client.balance()
    assert "key=" not in calls[-1].request
    assert calls[-1].request == "action=balance"


@responses.activate
def test_subscription_statuses_map_to_the_order_vocabulary(client):
    responses.post(
        URL,
        json={
            "1": {"status": "Active", "remains": "0"},
            "2": {"status": "Paused"},
            "3": {"status": "Expired"},
            "4": {"status": "Canceled"},
        },
    )
    result = client.statuses(["1", "2", "3", "4"])
    assert [result[i].status for i in "1234"] == ["In progress", "Processing", "Completed", "Canceled"]
    assert result["1"].raw_status == "Active"
