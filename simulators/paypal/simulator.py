"""A PayPal that runs on loopback: the Orders API v2 calls the panel makes, a buyer approval
page, and webhook deliveries that only this simulator's verify endpoint calls SUCCESS.

Framework-free (stdlib only). Endpoints, as PayPal names them:

- `POST /v1/oauth2/token` (HTTP basic client id and secret, `grant_type=client_credentials`)
- `POST /v2/checkout/orders`, `GET /v2/checkout/orders/{id}`,
  `POST /v2/checkout/orders/{id}/capture` (a repeated `PayPal-Request-Id` gets the first answer)
- `GET /v2/payments/captures/{id}`
- `POST /v1/notifications/verify-webhook-signature`
- `GET /checkoutnow?token={id}`: the buyer's page with "Pay" and "Cancel"
- `POST /control`: `{"action": ...}` for tests and for poking a running simulator (see
  `PayPalSimulator.control`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import html
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from simulators.web import SimulatorHandler

Json = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id(length: int = 17) -> str:
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _canonical(event: Any) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of parallel deliveries (the race tests) overflow the default backlog of 5.
    request_queue_size = 128


class PayPalSimulator:
    """One simulated PayPal account. Thread-safe; `start()` serves it on a free loopback port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",  # noqa: S107 - the demo credentials of a local simulator
        webhook_id: str = "demo-webhook",
        webhook_url: str = "",
        auto_webhooks: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.webhook_url = webhook_url
        self.auto_webhooks = auto_webhooks
        self.lock = threading.RLock()
        self.orders: dict[str, Json] = {}
        self.captures: dict[str, str] = {}  # capture id -> order id
        self.replies: dict[tuple[str, str], tuple[int, Json]] = {}  # (path, request id) -> reply
        self.tokens: set[str] = set()
        self.sent: dict[str, tuple[str, str]] = {}  # transmission id -> (signature, canonical event)
        self.deliveries: list[tuple[str, int]] = []  # (event type, panel's HTTP status)
        self.requests: list[tuple[str, str]] = []
        # Fault modes.
        self.hang_create = 0.0  # seconds to sleep before answering an order create
        self.fail_next = 0  # this many next API calls answer 500
        self.decline_capture = False  # the next captures are DECLINED
        self.server = _Server((host, port), _handler(self))
        self.thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PayPalSimulator:
        self.thread = threading.Thread(target=self.server.serve_forever, name="paypal-simulator", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the API ---------------------------------------------------------------------------

    def api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Json]:
        with self.lock:
            self.requests.append((method, path))
            if self.fail_next > 0 and not path.startswith("/v1/oauth2"):
                self.fail_next -= 1
                return 500, {"name": "INTERNAL_SERVER_ERROR", "message": "An internal server error occurred."}
        if method == "POST" and path == "/v1/oauth2/token":
            return self._token(headers, body)
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return 401, {"error": "invalid_token", "error_description": "Token signature verification failed"}
        payload: Json = {}
        if body:
            try:
                loaded = json.loads(body)
            except ValueError:
                return 400, {"name": "INVALID_REQUEST", "message": "Request is not well-formed."}
            payload = loaded if isinstance(loaded, dict) else {}
        parts = path.strip("/").split("/")
        request_id = headers.get("paypal-request-id", "")
        if method == "POST" and path == "/v2/checkout/orders":
            if self.hang_create:
                time.sleep(self.hang_create)
            return self._idempotent(path, request_id, lambda: self._create(payload))
        if len(parts) == 4 and parts[:3] == ["v2", "checkout", "orders"] and method == "GET":
            return self._show(parts[3])
        if len(parts) == 5 and parts[:3] == ["v2", "checkout", "orders"] and parts[4] == "capture" and method == "POST":
            return self._idempotent(path, request_id, lambda: self._capture(parts[3]))
        if len(parts) == 4 and parts[:3] == ["v2", "payments", "captures"] and method == "GET":
            return self._show_capture(parts[3])
        if method == "POST" and path == "/v1/notifications/verify-webhook-signature":
            return 200, {"verification_status": self._verify(payload)}
        return 404, {"name": "RESOURCE_NOT_FOUND", "message": "The specified resource does not exist."}

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, Json]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization", "") != f"Basic {expected}":
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        if parse_qs(body.decode()).get("grant_type") != ["client_credentials"]:
            return 400, {"error": "unsupported_grant_type"}
        token = "A21AA" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return 200, {
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-SIMULATOR",
            "expires_in": 32400,
            "nonce": _now(),
        }

    def _idempotent(self, path: str, request_id: str, make: Any) -> tuple[int, Json]:
        with self.lock:
            if request_id and (path, request_id) in self.replies:
                status, body = self.replies[(path, request_id)]
                return status, copy.deepcopy(body)
            status, body = make()
            if request_id and status < 500:
                self.replies[(path, request_id)] = (status, copy.deepcopy(body))
            return status, body

    def _links(self, order_id: str) -> list[Json]:
        base = self.base_url
        return [
            {"href": f"{base}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
            {"href": f"{base}/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"},
        ]

    def _create(self, payload: Json) -> tuple[int, Json]:
        units = payload.get("purchase_units")
        if payload.get("intent") not in ("CAPTURE", "AUTHORIZE") or not isinstance(units, list) or not units:
            return 400, {
                "name": "INVALID_REQUEST",
                "message": "Request is not well-formed.",
                "details": [{"issue": "MISSING_REQUIRED_PARAMETER"}],
            }
        amount = units[0].get("amount") or {}
        try:
            Decimal(str(amount.get("value")))
        except ArithmeticError:
            return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "DECIMAL_PRECISION"}]}
        context = ((payload.get("payment_source") or {}).get("paypal") or {}).get("experience_context") or {}
        context = context or payload.get("application_context") or {}
        order_id = _new_id()
        order = {
            "id": order_id,
            "intent": payload["intent"],
            "status": "PAYER_ACTION_REQUIRED",
            "purchase_units": copy.deepcopy(units),
            "create_time": _now(),
            "_return_url": str(context.get("return_url") or ""),
            "_cancel_url": str(context.get("cancel_url") or ""),
        }
        self.orders[order_id] = order
        return 200, self._public(order)

    def _public(self, order: Json) -> Json:
        shown = {k: copy.deepcopy(v) for k, v in order.items() if not k.startswith("_")}
        shown["links"] = self._links(order["id"])
        return shown

    def _show(self, order_id: str) -> tuple[int, Json]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return 404, {"name": "RESOURCE_NOT_FOUND", "details": [{"issue": "INVALID_RESOURCE_ID"}]}
            return 200, self._public(order)

    def _capture(self, order_id: str) -> tuple[int, Json]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, {"name": "RESOURCE_NOT_FOUND", "details": [{"issue": "INVALID_RESOURCE_ID"}]}
        if order["status"] == "COMPLETED":
            return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]}
        if order["status"] != "APPROVED":
            return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_NOT_APPROVED"}]}
        unit = order["purchase_units"][0]
        capture_id = _new_id()
        status = "DECLINED" if self.decline_capture else "COMPLETED"
        capture = {
            "id": capture_id,
            "status": status,
            "amount": copy.deepcopy(unit["amount"]),
            "final_capture": True,
            "custom_id": unit.get("custom_id", ""),
            "invoice_id": unit.get("invoice_id", ""),
            "create_time": _now(),
            "supplementary_data": {"related_ids": {"order_id": order_id}},
        }
        unit["payments"] = {"captures": [capture]}
        order["status"] = "COMPLETED"
        self.captures[capture_id] = order_id
        if self.auto_webhooks:
            event = "PAYMENT.CAPTURE.COMPLETED" if status == "COMPLETED" else "PAYMENT.CAPTURE.DENIED"
            self._later(event, order_id)
        return 201, self._public(order)

    def _show_capture(self, capture_id: str) -> tuple[int, Json]:
        with self.lock:
            order_id = self.captures.get(capture_id)
            if order_id is None:
                return 404, {"name": "RESOURCE_NOT_FOUND", "details": [{"issue": "INVALID_RESOURCE_ID"}]}
            return 200, copy.deepcopy(self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0])

    def _verify(self, payload: Json) -> str:
        with self.lock:
            sent = self.sent.get(str(payload.get("transmission_id") or ""))
        if sent is None or payload.get("webhook_id") != self.webhook_id:
            return "FAILURE"
        signature, event = sent
        if payload.get("transmission_sig") != signature or _canonical(payload.get("webhook_event")) != event:
            return "FAILURE"
        if not payload.get("cert_url") or payload.get("auth_algo") != "SHA256withRSA":
            return "FAILURE"
        return "SUCCESS"

    # --- the buyer -------------------------------------------------------------------------

    def approve(self, order_id: str, *, webhook: bool = True) -> str:
        """The buyer pressed Pay: the order is APPROVED; the URL PayPal sends the buyer back to.
        With `webhook` off the CHECKOUT.ORDER.APPROVED delivery is lost: a buyer who then
        closes the window leaves an order approved and never captured."""
        with self.lock:
            order = self.orders[order_id]
            if order["status"] == "PAYER_ACTION_REQUIRED":
                order["status"] = "APPROVED"
                order["payer"] = {"payer_id": "SIMPAYER1", "email_address": "buyer@example.com"}
        if self.auto_webhooks and webhook:
            self._later("CHECKOUT.ORDER.APPROVED", order_id)
        return _with_query(order["_return_url"], token=order_id, PayerID="SIMPAYER1")

    def cancel(self, order_id: str) -> str:
        with self.lock:
            order = self.orders[order_id]
        return _with_query(order["_cancel_url"], token=order_id)

    def page(self, order_id: str) -> str:
        with self.lock:
            order = self.orders.get(order_id)
        if order is None:
            return "<!doctype html><title>PayPal</title><p>Unknown order.</p>"
        amount = order["purchase_units"][0]["amount"]
        token = html.escape(order_id)
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>PayPal Checkout (simulator)</title>"
            "</head><body><h1>PayPal (simulator)</h1>"
            f"<p>Pay <strong>{html.escape(str(amount.get('value')))} {html.escape(str(amount.get('currency_code')))}"
            "</strong> to the panel.</p>"
            f"<form method=post action='/checkoutnow/pay?token={token}'><button type=submit>Pay</button></form>"
            f"<form method=post action='/checkoutnow/cancel?token={token}'><button type=submit>Cancel</button></form>"
            "</body></html>"
        )

    # --- webhooks --------------------------------------------------------------------------

    def event(self, event_type: str, order_id: str, *, amount: str | None = None) -> Json:
        """A webhook event as PayPal shapes it, about `order_id`."""
        with self.lock:
            order = copy.deepcopy(self.orders[order_id])
        unit = order["purchase_units"][0]
        capture = ((unit.get("payments") or {}).get("captures") or [{}])[0]
        money = {"currency_code": unit["amount"]["currency_code"], "value": amount or unit["amount"]["value"]}
        resource: Json
        if event_type == "CHECKOUT.ORDER.APPROVED":
            resource_type, resource = "checkout-order", self._public(order)
        elif event_type in ("PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.REVERSED"):
            resource_type, resource = "capture", dict(capture, amount=money)
            if event_type == "PAYMENT.CAPTURE.DENIED":
                resource["status"] = "DECLINED"
            if event_type == "PAYMENT.CAPTURE.REVERSED":
                resource["status"] = "REVERSED"
        elif event_type == "PAYMENT.CAPTURE.REFUNDED":
            resource_type = "refund"
            resource = {
                "id": _new_id(),
                "status": "COMPLETED",
                "amount": money,
                "custom_id": unit.get("custom_id", ""),
                "invoice_id": unit.get("invoice_id", ""),
                "links": [
                    {
                        "href": f"{self.base_url}/v2/payments/captures/{capture.get('id', '')}",
                        "rel": "up",
                        "method": "GET",
                    }
                ],
            }
        elif event_type == "CUSTOMER.DISPUTE.CREATED":
            resource_type = "dispute"
            resource = {
                "dispute_id": "PP-D-" + _new_id(5),
                "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
                "status": "OPEN",
                "dispute_amount": money,
                "disputed_transactions": [{"seller_transaction_id": capture.get("id", ""), "seller": {}}],
            }
        else:
            raise ValueError(f"the simulator does not send {event_type}")
        return {
            "id": "WH-" + _new_id(),
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
        }

    def sign(self, event: Json) -> dict[str, str]:
        """The transmission headers of one delivery of `event`; the verify endpoint knows them."""
        transmission_id = secrets.token_hex(16)
        signature = base64.b64encode(secrets.token_bytes(64)).decode()
        with self.lock:
            self.sent[transmission_id] = (signature, _canonical(event))
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": _now(),
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": f"{self.base_url}/v1/notifications/certs/CERT-SIMULATOR",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }

    def deliver(self, event: Json, *, url: str = "") -> int:
        """POST one signed delivery of `event` to the panel; its HTTP status (0: unreachable)."""
        target = url or self.webhook_url
        body = json.dumps(event).encode()
        if urlsplit(target).scheme not in ("http", "https"):
            raise ValueError(f"not a webhook URL: {target!r}")
        request = urllib.request.Request(target, data=body, method="POST")  # noqa: S310 - scheme checked above
        request.add_header("Content-Type", "application/json")
        for name, value in self.sign(event).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - scheme checked above
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with self.lock:
            self.deliveries.append((str(event.get("event_type")), status))
        return status

    def _later(self, event_type: str, order_id: str) -> None:
        if not self.webhook_url:
            return
        event = self.event(event_type, order_id)
        threading.Thread(target=self.deliver, args=(event,), daemon=True).start()

    # --- control ---------------------------------------------------------------------------

    def control(self, command: Json) -> Json:
        """`{"action": "faults", "hang_create": 30, "fail_next": 1, "decline_capture": true}`,
        `{"action": "send", "event_type": ..., "order_id": ..., "times": 2}` (duplicates),
        `{"action": "approve"|"capture", "order_id": ...}` (approve with `"webhook": false`: the
        buyer approved, the webhook was lost and they never came back), `{"action": "state"}`."""
        action = command.get("action")
        if action == "faults":
            with self.lock:
                self.hang_create = float(command.get("hang_create", self.hang_create))
                self.fail_next = int(command.get("fail_next", self.fail_next))
                self.decline_capture = bool(command.get("decline_capture", self.decline_capture))
                self.auto_webhooks = bool(command.get("auto_webhooks", self.auto_webhooks))
            return {"ok": True}
        if action == "send":
            event = self.event(str(command["event_type"]), str(command["order_id"]), amount=command.get("amount"))
            return {"statuses": [self.deliver(event) for _ in range(int(command.get("times", 1)))]}
        if action == "approve":
            return {"return_url": self.approve(str(command["order_id"]), webhook=bool(command.get("webhook", True)))}
        if action == "capture":
            with self.lock:
                return {"status": self._capture(str(command["order_id"]))[0]}
        if action == "state":
            with self.lock:
                return {"orders": {k: self._public(v) for k, v in self.orders.items()}, "deliveries": self.deliveries}
        return {"error": f"unknown action {action!r}"}


def _with_query(url: str, **params: str) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}{urlencode(params)}"


def _handler(sim: PayPalSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(SimulatorHandler):
        protocol_version = "HTTP/1.1"

        def _write(self, status: int, body: bytes, content_type: str, location: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Json) -> None:
            self._write(status, json.dumps(payload).encode(), "application/json")

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            token = (query.get("token") or [""])[0]
            body = self._body()
            if parts.path == "/checkoutnow" and method == "GET":
                self._write(200, sim.page(token).encode(), "text/html; charset=utf-8")
                return
            if parts.path in ("/checkoutnow/pay", "/checkoutnow/cancel") and method == "POST":
                if token not in sim.orders:
                    self._write(404, b"unknown order", "text/plain")
                    return
                target = sim.approve(token) if parts.path.endswith("pay") else sim.cancel(token)
                self._write(303, b"", "text/plain", location=target)
                return
            if parts.path == "/control" and method == "POST":
                try:
                    command = json.loads(body or b"{}")
                    self._json(200, sim.control(command if isinstance(command, dict) else {}))
                except (ValueError, KeyError) as exc:
                    self._json(400, {"error": str(exc)})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = sim.api(method, parts.path, headers, body)
            self._json(status, payload)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local PayPal Orders API v2 for the panel.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8910)
    parser.add_argument("--webhook-url", default="http://127.0.0.1:8000/wallet/webhooks/paypal/")
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--webhook-id", default="demo-webhook")
    args = parser.parse_args()
    sim = PayPalSimulator(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        webhook_id=args.webhook_id,
        webhook_url=args.webhook_url,
    )
    print(f"PayPal simulator on {sim.base_url}, webhooks to {sim.webhook_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.server.serve_forever()
