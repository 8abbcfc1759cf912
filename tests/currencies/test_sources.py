"""Reading the shapes real rates sources publish, and converting to the panel's base."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from currencies.sources import SourceError, parse, rebase

D = Decimal

OXR = {
    "disclaimer": "Usage subject to terms: https://openexchangerates.org/terms",
    "license": "https://openexchangerates.org/license",
    "timestamp": 1732838400,
    "base": "USD",
    "rates": {"EUR": 0.9187, "GBP": 0.7862, "JPY": 151.32, "BTC": 0.0000105},
}
FRANKFURTER = {"amount": 1.0, "base": "EUR", "date": "2026-11-27", "rates": {"USD": 1.0851, "GBP": 0.8557}}
ECB = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <Cube><Cube time="2026-11-27"><Cube currency="USD" rate="1.0851"/><Cube currency="JPY" rate="164.2"/></Cube></Cube>
</gesmes:Envelope>"""


def test_open_exchange_rates_latest_json_is_read_exactly():
    quote = parse(json.dumps(OXR).encode(), "application/json; charset=utf-8")
    assert quote.shape == "openexchangerates" and quote.base == "USD"
    # From the text, not through a float: 0.9187 stays 0.9187.
    assert quote.rates["EUR"] == D("0.9187") and quote.rates["USD"] == 1
    assert quote.rates["BTC"] == D("0.0000105")


def test_frankfurter_on_a_euro_base_is_converted_by_cross_rates():
    quote = parse(json.dumps(FRANKFURTER).encode(), "application/json")
    assert quote.shape == "base-rates" and quote.base == "EUR"
    rates = rebase(quote, "USD")
    assert rates["USD"] == 1
    assert rates["EUR"] == (D(1) / D("1.0851")).quantize(D("1e-12"))
    assert rates["GBP"] == (D("0.8557") / D("1.0851")).quantize(D("1e-12"))


def test_the_ecb_daily_xml_is_read_and_converted():
    quote = parse(ECB, "text/xml")
    assert quote.shape == "ecb" and quote.base == "EUR" and quote.rates["JPY"] == D("164.2")
    assert rebase(quote, "USD")["JPY"] == (D("164.2") / D("1.0851")).quantize(D("1e-12"))
    # Detected by shape too, whatever the content type says.
    assert parse(ECB, "application/octet-stream").shape == "ecb"


def test_exchangerate_host_quotes_shape():
    body = {"success": True, "source": "USD", "quotes": {"USDEUR": 0.92, "USDGBP": "0.79"}}
    quote = parse(json.dumps(body).encode())
    assert quote.rates == {"EUR": D("0.92"), "GBP": D("0.79"), "USD": 1}


def test_nonsense_rates_are_refused_one_by_one():
    body = {"base": "USD", "rates": {"EUR": 0, "GBP": -1.5, "JPY": "n/a", "INR": None, "TRY": 34.2, "XX1": 3}}
    quote = parse(json.dumps(body).encode())
    assert set(quote.refused) == {"EUR", "GBP", "JPY", "INR"}
    assert quote.rates == {"TRY": D("34.2"), "USD": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b"not json at all",
        b"[1, 2]",
        b'{"error": true, "status": 401, "message": "invalid_app_id"}',
        b'{"rates": {"EUR": 0.9}}',
        b'{"base": "USD", "rates": {"EUR": 0}}',
        b"<?xml version='1.0'?><root/>",
        b"\xff\xfe garbage",
    ],
)
def test_garbage_is_a_source_error(body):
    with pytest.raises(SourceError):
        parse(body, "")


def test_no_cross_rate_without_the_panels_currency():
    quote = parse(json.dumps(FRANKFURTER).encode())
    with pytest.raises(SourceError):
        rebase(quote, "INR")
