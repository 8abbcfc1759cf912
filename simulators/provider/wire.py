"""Request parameters in, JSON out: the parsing rules of the API and the control endpoint."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from simulators.provider.state import MAX_LINK_LENGTH, ControlError


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def parse_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    # isascii(): isdigit() also passes superscripts, which int() then refuses.
    if not text or not text.isascii() or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        return None
    return int(text)


def _flatten(name: str, value: object) -> str:
    if isinstance(value, list | tuple):
        sep = "," if name in ("orders", "refills") else "\n"
        return sep.join(_flatten(name, item) for item in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_params(query: str, body: bytes, content_type: str = "") -> dict[str, str]:
    """Request parameters from the query string, overridden by a form or JSON body."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    text = body.decode("utf-8", "replace")
    if "json" in content_type.lower() or text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            params.update({str(k): _flatten(str(k), v) for k, v in obj.items() if v is not None})
            return params
        if "json" in content_type.lower():
            return params
    params.update(parse_qsl(text, keep_blank_values=True))
    return params


def valid_link(link: str) -> bool:
    return bool(link) and len(link) <= MAX_LINK_LENGTH and not any(ch.isspace() for ch in link)


def id_out(raw: str) -> int | str:
    return int(raw) if raw.isascii() and raw.isdigit() else raw


def command_list(obj: object) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and "commands" in obj:
        obj = obj["commands"]
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list) or not all(isinstance(item, dict) for item in obj):
        raise ControlError("expected a command object, a list of them, or {'commands': [...]}")
    return obj


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
