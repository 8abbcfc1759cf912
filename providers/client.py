"""HTTP client for upstream providers speaking API v2 (shared/API_V2.md).

Framework-free: no Django, no ORM. Every call ends in a typed result or one of three
errors, because what the caller may do next depends on it:

- `NotSent`: the request surely never reached the provider (DNS, refused, connect
  timeout, TLS, an explicit 429 or 4xx refusal). Retrying is safe.
- `Rejected`: the provider answered with `{"error": ...}`. Definitive; the message is
  normalised from raw translation keys.
- `UnknownOutcome`: the request may have been processed (read timeout, reset after
  sending, 5xx, a body that is not the expected JSON). For `add` the provider may have
  created and charged the order, so it must never be retried blindly.

Each call is reported to an optional `on_call` callback (a `CallRecord`) so the caller can
keep a log without this module knowing about storage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests

from kernel import protocol
from kernel.money import MoneyFormatError, to_decimal
from kernel.outbound import AddressRefusedError, GuardedAdapter

T = TypeVar("T")

USER_AGENT = "smmpanel/1.0 (+API v2 client)"
BODY_LOG_LIMIT = 2000


class ProviderError(Exception):
    """Base class; `message` is safe to show to staff."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


class NotSent(ProviderError):
    """The request surely did not reach the provider: safe to retry."""


class Rejected(ProviderError):
    """The provider answered with an error: definitive."""

    @property
    def is_provider_side(self) -> bool:
        """Our account at the provider is the problem (funds, key), not the order."""
        return self.message in protocol.PROVIDER_SIDE_ERRORS


class UnknownOutcome(ProviderError):
    """The request may have been processed: never retry an `add` blindly."""


@dataclass(frozen=True)
class CallRecord:
    action: str
    started_at: datetime
    duration_ms: int
    http_status: int | None
    outcome: str  # "ok", "rejected", "not_sent", "unknown"
    error: str
    request: str
    body: str
    order_ref: int | None = None


@dataclass(frozen=True)
class ServiceInfo:
    service_id: str
    name: str
    type: str
    category: str
    rate: Decimal
    min_quantity: int
    max_quantity: int
    refill: bool
    cancel: bool
    dripfeed: bool
    description: str = ""


@dataclass(frozen=True)
class OrderStatus:
    status: str  # normalised, one of protocol.ORDER_STATUSES
    raw_status: str
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Balance:
    balance: Decimal
    currency: str


@dataclass
class _Reply:
    data: Any
    http_status: int
    text: str = field(repr=False, default="")


def _to_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = to_decimal(value)
    except MoneyFormatError:
        return None
    if number != number.to_integral_value():
        return None
    return int(number)


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _id_text(value: Any) -> str | None:
    """An id as text: ints and numeric strings alike ("23501" and 23501)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


class ProviderClient:
    def __init__(
        self,
        *,
        url: str,
        key: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_response_bytes: int = 20 * 1024 * 1024,
        session: requests.Session | None = None,
        on_call: Callable[[CallRecord], None] | None = None,
        allow_private_addresses: bool = False,
    ) -> None:
        self.url = url
        self.key = key
        self.timeout = (connect_timeout, read_timeout)
        self.max_response_bytes = max_response_bytes
        self.on_call = on_call
        if session is None:
            session = requests.Session()
            # No automatic retries: whether a retry is safe is decided above this layer. The
            # guarded transport resolves the host once and connects only to the public
            # address it checked (smmpanel/outbound.py).
            for prefix in ("http://", "https://"):
                session.mount(prefix, GuardedAdapter(max_retries=0, allow_private=allow_private_addresses))
        self.session = session

    # --- transport -------------------------------------------------------------------------
    def _post(
        self,
        action: str,
        params: Mapping[str, Any],
        parse: Callable[[_Reply], T],
        *,
        order_ref: int | None = None,
    ) -> T:
        """Send one request and interpret the reply with `parse`; the call is recorded either way."""
        data = {"key": self.key, "action": action, **{k: v for k, v in params.items() if v is not None}}
        logged_request = "&".join(f"{k}={v}" for k, v in data.items() if k != "key")[:BODY_LOG_LIMIT]
        started = datetime.now(UTC)
        t0 = time.monotonic()
        http_status: int | None = None
        text = ""
        try:
            try:
                response = self.session.post(
                    self.url,
                    data=data,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                )
            except requests.exceptions.ConnectTimeout as exc:
                raise NotSent(f"connect timeout: {exc.__class__.__name__}") from exc
            except requests.exceptions.SSLError as exc:
                raise NotSent("TLS handshake failed") from exc
            except requests.exceptions.ReadTimeout as exc:
                raise UnknownOutcome("read timeout: the provider may have processed the request") from exc
            except requests.exceptions.ConnectionError as exc:
                refused = _guard_refusal(exc)
                if refused is not None:
                    raise NotSent(f"address refused: {refused}") from exc
                if _connection_never_established(exc):
                    raise NotSent("connection failed before sending") from exc
                raise UnknownOutcome("connection dropped after sending") from exc
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
                raise NotSent(f"invalid provider URL: {exc}") from exc
            except requests.exceptions.RequestException as exc:
                raise UnknownOutcome(f"request failed: {exc.__class__.__name__}") from exc

            http_status = response.status_code
            try:
                raw = self._read_limited(response)
            except requests.exceptions.RequestException as exc:
                raise UnknownOutcome("connection dropped while reading the reply", http_status=http_status) from exc
            finally:
                response.close()
            text = raw.decode("utf-8", errors="replace")

            if http_status == 429 or 300 <= http_status < 500:
                # An explicit refusal (rate limit, redirect we do not follow, missing endpoint,
                # challenge): the API did not process the request.
                raise NotSent(f"HTTP {http_status} from provider", http_status=http_status)
            if http_status >= 500 or http_status < 200:
                raise UnknownOutcome(f"HTTP {http_status} from provider", http_status=http_status)
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                raise UnknownOutcome("reply is not JSON", http_status=http_status) from exc
            if isinstance(parsed, dict) and "error" in parsed and isinstance(parsed["error"], str | int):
                raise Rejected(protocol.normalise_error(str(parsed["error"])), http_status=http_status)
            result = parse(_Reply(parsed, http_status, text))
            self._record(action, started, t0, http_status, "ok", "", logged_request, text, order_ref)
            return result
        except ProviderError as exc:
            outcome = {Rejected: "rejected", NotSent: "not_sent"}.get(type(exc), "unknown")
            self._record(action, started, t0, http_status, outcome, exc.message, logged_request, text, order_ref)
            raise

    def _read_limited(self, response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise UnknownOutcome("reply too large", http_status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _record(
        self,
        action: str,
        started: datetime,
        t0: float,
        http_status: int | None,
        outcome: str,
        error: str,
        request: str,
        body: str,
        order_ref: int | None,
    ) -> None:
        if self.on_call is None:
            return
        self.on_call(
            CallRecord(
                action=action,
                started_at=started,
                duration_ms=int((time.monotonic() - t0) * 1000),
                http_status=http_status,
                outcome=outcome,
                error=error[:500],
                request=request,
                body=body[:BODY_LOG_LIMIT],
                order_ref=order_ref,
            )
        )

    # --- actions ---------------------------------------------------------------------------
    def services(self) -> list[ServiceInfo]:
        return self._post("services", {}, _parse_services)

    def add(self, *, order_ref: int | None = None, **fields: Any) -> str:
        """Place an order; returns the provider's order id. `fields` are API v2 fields."""
        params = {k: (protocol.join_list(v) if isinstance(v, list) else v) for k, v in fields.items()}
        return self._post("add", params, _parse_add, order_ref=order_ref)

    def status(self, order_id: str) -> OrderStatus:
        return self._post("status", {"order": order_id}, _parse_single_status)

    def statuses(self, order_ids: Iterable[str]) -> dict[str, OrderStatus | ProviderError]:
        ids = _bounded_ids(order_ids)
        return self._post("status", {"orders": ",".join(ids)}, lambda reply: _parse_statuses(reply, ids))

    def refill(self, order_id: str) -> str:
        return self._post("refill", {"order": order_id}, _parse_refill)

    def refills(self, order_ids: Iterable[str]) -> dict[str, str | ProviderError]:
        ids = _bounded_ids(order_ids)
        return self._post(
            "refill",
            {"orders": ",".join(ids)},
            lambda r: _bulk_list(r, ids, key="order", value="refill", parse=_id_text),
        )

    def refill_status(self, refill_id: str) -> str:
        return self._post("refill_status", {"refill": refill_id}, _parse_refill_status)

    def refill_statuses(self, refill_ids: Iterable[str]) -> dict[str, str | ProviderError]:
        ids = _bounded_ids(refill_ids)
        return self._post(
            "refill_status",
            {"refills": ",".join(ids)},
            lambda r: _bulk_list(r, ids, key="refill", value="status", parse=protocol.normalise_refill_status),
        )

    def cancel(self, order_ids: Iterable[str]) -> dict[str, bool | ProviderError]:
        ids = _bounded_ids(order_ids)
        return self._post(
            "cancel",
            {"orders": ",".join(ids)},
            lambda r: _bulk_list(r, ids, key="order", value="cancel", parse=lambda v: True if _to_bool(v) else None),
        )

    def balance(self) -> Balance:
        return self._post("balance", {}, _parse_balance)


def _parse_services(reply: _Reply) -> list[ServiceInfo]:
    if not isinstance(reply.data, list):
        raise UnknownOutcome("services: expected a list", http_status=reply.http_status)
    return [info for info in map(_parse_service, reply.data) if info is not None]


def _parse_add(reply: _Reply) -> str:
    order_id = _id_text(reply.data.get("order")) if isinstance(reply.data, dict) else None
    if order_id is None:
        raise UnknownOutcome("add: reply has neither order nor error", http_status=reply.http_status)
    return order_id


def _parse_single_status(reply: _Reply) -> OrderStatus:
    parsed = _parse_status(reply.data)
    if parsed is None:
        raise UnknownOutcome("status: unreadable reply", http_status=reply.http_status)
    return parsed


def _parse_statuses(reply: _Reply, ids: list[str]) -> dict[str, OrderStatus | ProviderError]:
    if not isinstance(reply.data, dict):
        raise UnknownOutcome("status: expected an object", http_status=reply.http_status)
    result: dict[str, OrderStatus | ProviderError] = {}
    for order_id in ids:
        item = reply.data.get(order_id)
        if isinstance(item, dict) and "error" in item:
            result[order_id] = Rejected(protocol.normalise_error(str(item["error"])))
            continue
        parsed = _parse_status(item)
        # An id missing from the reply or unreadable is unknown, never "canceled".
        result[order_id] = parsed if parsed is not None else UnknownOutcome("status: unreadable entry")
    return result


def _parse_refill(reply: _Reply) -> str:
    refill_id = _id_text(reply.data.get("refill")) if isinstance(reply.data, dict) else None
    if refill_id is None:
        raise UnknownOutcome("refill: reply has no refill id", http_status=reply.http_status)
    return refill_id


def _parse_refill_status(reply: _Reply) -> str:
    status = protocol.normalise_refill_status(reply.data.get("status")) if isinstance(reply.data, dict) else None
    if status is None:
        raise UnknownOutcome("refill_status: unreadable reply", http_status=reply.http_status)
    return status


def _parse_balance(reply: _Reply) -> Balance:
    data = reply.data
    if not isinstance(data, dict) or "balance" not in data:
        raise UnknownOutcome("balance: unreadable reply", http_status=reply.http_status)
    try:
        amount = to_decimal(data["balance"])
    except MoneyFormatError as exc:
        raise UnknownOutcome("balance: not a number", http_status=reply.http_status) from exc
    return Balance(balance=amount, currency=str(data.get("currency") or "").upper()[:3])


def _guard_refusal(exc: requests.exceptions.ConnectionError) -> str | None:
    """Why the outbound-URL guard refused the address, when it did."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return reason.refusal if isinstance(reason, AddressRefusedError) else None


def _connection_never_established(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, DNS), so nothing was sent."""
    text = repr(exc.args[0] if exc.args else exc)
    markers = ("NewConnectionError", "NameResolutionError", "Connection refused", "Failed to resolve", "ConnectTimeout")
    return any(marker in text for marker in markers)


def _bounded_ids(ids: Iterable[str]) -> list[str]:
    result = [str(i) for i in ids]
    if not result:
        raise ValueError("at least one id is needed")
    if len(result) > protocol.MAX_IDS:
        raise ValueError(f"at most {protocol.MAX_IDS} ids per request")
    return result


def _bulk_list(reply: _Reply, ids: list[str], *, key: str, value: str, parse: Callable[[Any], Any]) -> dict[str, Any]:
    """Read `[{"order": 1, "refill": 1}, {"order": 2, "refill": {"error": ...}}]`-shaped replies."""
    if not isinstance(reply.data, list):
        raise UnknownOutcome(f"{value}: expected a list", http_status=reply.http_status)
    result: dict[str, Any] = {}
    for item in reply.data:
        if not isinstance(item, dict):
            continue
        item_id = _id_text(item.get(key))
        if item_id is None or item_id not in ids:
            continue
        inner = item.get(value)
        if isinstance(inner, dict) and "error" in inner:
            result[item_id] = Rejected(protocol.normalise_error(str(inner["error"])))
            continue
        parsed = parse(inner)
        result[item_id] = parsed if parsed is not None else UnknownOutcome(f"{value}: unreadable entry")
    for item_id in ids:
        result.setdefault(item_id, UnknownOutcome(f"{value}: id missing from the reply"))
    return result


def _parse_service(item: Any) -> ServiceInfo | None:
    if not isinstance(item, dict):
        return None
    service_id = _id_text(item.get("service"))
    try:
        rate = to_decimal(item.get("rate"))
    except MoneyFormatError:
        return None
    minimum = _to_int(item.get("min"))
    maximum = _to_int(item.get("max"))
    if service_id is None or rate < 0 or minimum is None or maximum is None:
        return None
    return ServiceInfo(
        service_id=service_id[:64],
        name=str(item.get("name") or "")[:500],
        type=protocol.normalise_service_type(item.get("type"))[:64],
        category=str(item.get("category") or "")[:255],
        rate=rate,
        min_quantity=max(minimum, 0),
        max_quantity=max(maximum, minimum, 0),
        refill=_to_bool(item.get("refill")),
        cancel=_to_bool(item.get("cancel")),
        dripfeed=_to_bool(item.get("dripfeed")),
        description=str(item.get("desc") or item.get("description") or "")[:5000],
    )


def _parse_status(item: Any) -> OrderStatus | None:
    if not isinstance(item, dict):
        return None
    raw = item.get("status")
    status = protocol.normalise_status(raw)
    if status is None:
        return None
    charge = None
    if item.get("charge") not in (None, ""):
        try:
            charge = to_decimal(item["charge"])
        except MoneyFormatError:
            charge = None
    return OrderStatus(
        status=status,
        raw_status=str(raw),
        charge=charge,
        start_count=_to_int(item.get("start_count")),
        remains=_to_int(item.get("remains")),
        currency=(str(item["currency"]) if item.get("currency") else None),
    )
