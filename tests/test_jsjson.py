"""kernel.jsjson writes what JavaScript's JSON.stringify writes."""

from __future__ import annotations

import pytest

from kernel import jsjson


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0", "1"),
        ("-0.0", "0"),
        ("0.1", "0.1"),
        ("2e-05", "0.00002"),
        ("1e-6", "0.000001"),
        ("1e-7", "1e-7"),
        ("9.9e-7", "9.9e-7"),
        ("1.5e-8", "1.5e-8"),
        ("123e18", "123000000000000000000"),
        ("1e21", "1e+21"),
        ("12345678901234567890", "12345678901234567000"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them(text, expected):
    assert jsjson.js_number(text) == expected


def test_dumps_is_compact_keeps_non_ascii_and_sorts_on_request():
    value = jsjson.loads('{"b": [1.50, true, null], "a": {"y": "é", "x": 2e-05}}')
    assert jsjson.dumps(value) == '{"b":[1.5,true,null],"a":{"y":"é","x":0.00002}}'
    assert jsjson.dumps(value, sort_keys=True) == '{"a":{"x":0.00002,"y":"é"},"b":[1.5,true,null]}'
    assert (
        jsjson.dumps(value, sort_keys=True, ensure_ascii=True)
        == '{"a":{"x":0.00002,"y":"\\u00e9"},"b":[1.5,true,null]}'
    )


def test_a_key_list_filters_every_level_like_a_replacer_array():
    value = {"b": 1, "a": {"b": 2, "z": 3}}
    assert jsjson.dumps(value, sort_keys=True, keys=["a", "b"]) == '{"a":{"b":2},"b":1}'
