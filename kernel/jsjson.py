"""JSON written the way JavaScript's JSON.stringify writes it.

Some processors sign a JSON re-serialisation of their payload made in JavaScript
(NOWPayments: `JSON.stringify(params, Object.keys(params).sort())`). Python's json module
differs in two ways that change the bytes: numbers (`2e-05` where JavaScript writes
`0.00002`, `1.0` where it writes `1`) and non-ASCII text (escaped by default). `loads`
keeps each number's text, and `dumps` writes numbers as JavaScript's Number#toString does.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from decimal import Decimal
from typing import Any


class JSNumber(str):
    """A number as it was written in the JSON text."""

    __slots__ = ()


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=JSNumber, parse_int=JSNumber)


def js_number(text: str) -> str:
    """JavaScript's Number#toString of the double nearest to `text`."""
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        return "null"  # JSON.stringify writes NaN and Infinity as null
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    shortest = repr(value)  # Python and JavaScript both print the shortest round-trip digits
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(shortest), "f")
    mantissa, _, exponent = format(Decimal(shortest), "e").partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def dumps(
    value: Any, *, sort_keys: bool = False, ensure_ascii: bool = False, keys: Collection[str] | None = None
) -> str:
    """Compact JSON as JSON.stringify writes it; `keys`, like its replacer array, keeps only
    those keys at every level (in that order when sort_keys is False)."""
    if isinstance(value, JSNumber) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return js_number(str(value))
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=ensure_ascii)
    if isinstance(value, dict):
        names = list(value)
        if keys is not None:
            names = [k for k in keys if k in value]
        if sort_keys:
            names = sorted(names)
        items = (
            f"{json.dumps(str(k), ensure_ascii=ensure_ascii)}:"
            f"{dumps(value[k], sort_keys=sort_keys, ensure_ascii=ensure_ascii, keys=keys)}"
            for k in names
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v, sort_keys=sort_keys, ensure_ascii=ensure_ascii, keys=keys) for v in value) + "]"
    if isinstance(value, Decimal):
        return js_number(str(value))
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
