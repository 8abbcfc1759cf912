"""Reading a rates source: the shapes real sources publish, framework-free.

- Open Exchange Rates `latest.json` (https://docs.openexchangerates.org/reference/latest-json):
  `{"disclaimer", "license", "timestamp", "base": "USD", "rates": {"EUR": 0.9187, ...}}`, the
  key sent as `app_id`.
- Frankfurter (https://frankfurter.dev/) and the exchangerate.host-style APIs:
  `{"amount": 1.0, "base": "EUR", "date": "2026-11-27", "rates": {"USD": 1.0851, ...}}`;
  also `{"source": "USD", "quotes": {"USDEUR": 0.9187}}` (exchangerate.host's `live`).
- The ECB's daily reference rates (https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml):
  a `gesmes:Envelope` whose innermost `Cube` elements carry `currency` and `rate`, base EUR.

Every source says how many units of each currency one unit of its base buys. The panel
wants rates against its own currency, so a source on another base is converted by cross
rates: units of X per panel unit = rate(X) / rate(panel). Numbers are read from their text
(never through a binary float); a rate that is not a positive finite number is dropped and
named in `refused`, the others still count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

from kernel.money import MoneyFormatError, to_decimal

CODE = re.compile(r"[A-Z]{3}", flags=re.ASCII)
# Significant digits kept by a cross rate: far beyond any source's own precision.
CROSS_PLACES = Decimal("1e-12")


class SourceError(Exception):
    """The body is not a rates document this panel can read (garbage, an error page, no base)."""


@dataclass(frozen=True)
class Quote:
    """What one answer of a source says: units of each currency per one unit of `base`."""

    base: str
    rates: dict[str, Decimal]
    shape: str  # "openexchangerates", "base-rates", "quotes", "ecb"
    refused: dict[str, str] = field(default_factory=dict)  # code -> why its rate was dropped


def parse(body: bytes, content_type: str = "") -> Quote:
    """Detect the shape by content type, then by the body's first character."""
    text = body.lstrip()
    kind = content_type.split(";")[0].strip().lower()
    if kind.endswith("xml") or text.startswith(b"<"):
        return _parse_ecb(body)
    try:
        # Numbers as their text: 0.1 stays 0.1, not 0.1000000000000000055.
        document = json.loads(body, parse_float=str, parse_int=str)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError("the answer is neither JSON nor XML") from exc
    if not isinstance(document, dict):
        raise SourceError("the JSON answer is not an object")
    if document.get("error") or document.get("success") is False:
        raise SourceError(f"the source answered an error: {str(document.get('error') or document)[:200]}")
    if isinstance(document.get("rates"), dict):
        base = str(document.get("base") or "").upper()
        shape = "openexchangerates" if "timestamp" in document and "license" in document else "base-rates"
        return _quote(base, document["rates"], shape=shape)
    if isinstance(document.get("quotes"), dict):
        base = str(document.get("source") or "").upper()
        rates = {
            str(pair)[len(base) :]: value for pair, value in document["quotes"].items() if str(pair).startswith(base)
        }
        return _quote(base, rates, shape="quotes")
    raise SourceError("the JSON answer has no rates")


def _parse_ecb(body: bytes) -> Quote:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - the standard parser refuses external entities
    except ElementTree.ParseError as exc:
        raise SourceError("the XML answer does not parse") from exc
    rates: dict[str, Any] = {}
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Cube" and "currency" in element.attrib:
            rates[element.attrib["currency"]] = element.attrib.get("rate", "")
    if not rates:
        raise SourceError("the XML answer has no Cube rates")
    return _quote("EUR", rates, shape="ecb")


def _quote(base: str, raw: dict[str, Any], *, shape: str) -> Quote:
    if not CODE.fullmatch(base):
        raise SourceError(f"the answer names no base currency ({base!r})")
    rates: dict[str, Decimal] = {}
    refused: dict[str, str] = {}
    for key, value in raw.items():
        code = str(key).upper()
        if not CODE.fullmatch(code):
            continue
        reason = ""
        try:
            rate = to_decimal(value)
        except MoneyFormatError:
            reason = f"not a number: {str(value)[:40]!r}"
        else:
            if rate <= 0:
                reason = f"not positive: {rate}"
        if reason:
            refused[code] = reason
        else:
            rates[code] = rate
    if not rates:
        raise SourceError("the answer has no usable rate")
    rates[base] = Decimal(1)
    return Quote(base=base, rates=rates, shape=shape, refused=refused)


def rebase(quote: Quote, base: str) -> dict[str, Decimal]:
    """Units of each currency per one unit of `base`, by cross rates when the source's base differs."""
    base = base.upper()
    if quote.base == base:
        return dict(quote.rates)
    pivot = quote.rates.get(base)
    if pivot is None:
        raise SourceError(f"the source ({quote.base} based) has no rate for {base}: no cross rate")
    return {code: (rate / pivot).quantize(CROSS_PLACES) for code, rate in quote.rates.items()}
