"""The NOWPayments simulator: the API endpoints the panel uses, the invoice page, IPNs, faults.

Endpoints (as NOWPayments documents them):

- `POST /v1/invoice` (`x-api-key`): an invoice; its `invoice_url` is this simulator's page.
- `GET /v1/payment/{payment_id}` (`x-api-key`): a payment made on an invoice.
- `POST /v1/auth` (`email`, `password`): `{"token": …}`; `GET /v1/payment/` (`x-api-key`
  and `Authorization: Bearer <token>`; `limit`, `page`, `sortBy`, `orderBy`, `dateFrom`,
  `dateTo`): `{"data": [...], "limit", "page", "pagesCount", "total"}`.
- `GET /v1/status`: `{"message": "OK"}`.
- `GET /payment/?iid=<invoice id>`: the hosted invoice page, with buttons "Pay", "Pay
  partially", "Overpay" and "Let it expire"; each makes a payment in BTC at the rate quoted
  on the invoice, moves it through its statuses, POSTs a signed IPN for each to the
  invoice's `ipn_callback_url` (header `x-nowpayments-sig`: HMAC-SHA512 of the sorted JSON
  body) and sends the browser to `success_url` (or `cancel_url` when it expired).
- `POST /_control` (JSON): `{"fault": "hang"|"error"|"bad_signature"|"duplicate"|
  "out_of_order"|null, "seconds": 30}`; `{"act": "pay"|"partial"|"overpay"|"expire"|
  "pay_late", "invoice_id": "…", "deliver": true}`; `{"resend": <payment id>}`;
  `GET /_control`: the invoices, payments, IPN deliveries and request counts.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kernel import jsjson
from simulators.web import SimulatorHandler

DEMO_API_KEY = "demo-nowpayments-api-key"
DEMO_IPN_SECRET = "demo-nowpayments-ipn-secret"
DEMO_EMAIL = "demo@nowpayments.invalid"
DEMO_PASSWORD = "demo-nowpayments-password"
# The quoted rate: 1 BTC for this many units of the price currency.
BTC_RATE = Decimal("50000")
SATOSHI = Decimal("0.00000001")
FAULTS = frozenset({"hang", "error", "bad_signature", "duplicate", "out_of_order"})
# The statuses a payment goes through for each button, in order.
SEQUENCES = {
    "pay": ("waiting", "confirming", "confirmed", "sending", "finished"),
    "overpay": ("waiting", "confirming", "confirmed", "sending", "finished"),
    "partial": ("waiting", "confirming", "partially_paid"),
    "expire": ("waiting", "expired"),
    "pay_late": ("confirming", "finished"),
}


def sign(body: dict[str, Any], secret: str) -> str:
    """NOWPayments' signature: HMAC-SHA512 of the body as JSON.stringify writes it, keys sorted."""
    canonical = jsjson.dumps(body, sort_keys=True)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha512).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


class ControlError(Exception):
    pass


class NowPaymentsSimulator:
    def __init__(
        self,
        *,
        api_key: str = DEMO_API_KEY,
        ipn_secret: str = DEMO_IPN_SECRET,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
    ) -> None:
        self.api_key = api_key
        self.ipn_secret = ipn_secret
        self.email = email
        self.password = password
        self.tokens: set[str] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self.fault: str | None = None
        self.fault_seconds = 30.0
        self._ids = itertools.count(4_522_625_843)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._release = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> NowPaymentsSimulator:
        simulator = self

        class Handler(_Handler):
            sim = simulator

        self.host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set_fault(self, mode: str | None, *, seconds: float = 30.0) -> None:
        if mode is not None and mode not in FAULTS:
            raise ControlError(f"unknown fault {mode!r}; one of {sorted(FAULTS)}")
        self.fault = mode
        self.fault_seconds = seconds
        self._release.set()
        self._release = threading.Event()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    # --- the API ---------------------------------------------------------------------------

    def create_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        price = Decimal(str(body.get("price_amount") or "0"))
        if price <= 0:
            raise ControlError("price_amount is required")
        invoice_id = str(next(self._ids))
        now = _now()
        invoice = {
            "id": invoice_id,
            "token_id": f"tok{invoice_id}",
            "order_id": str(body.get("order_id") or ""),
            "order_description": str(body.get("order_description") or ""),
            "price_amount": str(body.get("price_amount")),
            "price_currency": str(body.get("price_currency") or "usd").lower(),
            "pay_currency": None,
            "ipn_callback_url": str(body.get("ipn_callback_url") or ""),
            "invoice_url": f"{self.url}/payment/?iid={invoice_id}",
            "success_url": str(body.get("success_url") or ""),
            "cancel_url": str(body.get("cancel_url") or ""),
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self.invoices[invoice_id] = invoice
        return invoice

    def act(self, *, invoice_id: str, action: str, deliver: bool = True) -> dict[str, Any]:
        """A customer's payment on an invoice; its IPNs are sent before this returns."""
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise ControlError(f"no invoice {invoice_id}")
        if action not in SEQUENCES:
            raise ControlError(f"unknown action {action!r}; one of {sorted(SEQUENCES)}")
        price = Decimal(invoice["price_amount"])
        pay_amount = (price / BTC_RATE).quantize(SATOSHI, rounding=ROUND_HALF_UP)
        paid = {
            "pay": pay_amount,
            "pay_late": pay_amount,
            "overpay": pay_amount * 2,
            "partial": (pay_amount / 2).quantize(SATOSHI),
            "expire": Decimal("0"),
        }[action]
        payment_id = str(next(self._ids))
        payment: dict[str, Any] = {
            "payment_id": int(payment_id),
            "invoice_id": int(invoice_id),
            "payment_status": "waiting",
            "pay_address": f"bc1qsimulator{payment_id}",
            "price_amount": _number(price),
            "price_currency": invoice["price_currency"],
            "pay_amount": _number(pay_amount),
            "actually_paid": 0,
            "actually_paid_at_fiat": 0,
            "pay_currency": "btc",
            "order_id": invoice["order_id"],
            "order_description": invoice["order_description"],
            "purchase_id": str(int(payment_id) + 1),
            "created_at": _now(),
            "updated_at": _now(),
            "outcome_amount": 0,
            "outcome_currency": "btc",
            "fee": {"currency": "btc", "depositFee": 0, "withdrawalFee": 0, "serviceFee": 0},
        }
        with self._lock:
            self.payments[payment_id] = payment
        statuses = SEQUENCES[action]
        for status in statuses:
            self._move(payment_id, status=status, paid=paid if status != "waiting" else Decimal("0"))
            if deliver and self.fault != "out_of_order":
                self.send_ipn(payment_id)
        if deliver and self.fault == "out_of_order":
            # The last status arrives first, then the earlier ones, newest to oldest.
            for status in reversed(statuses):
                self.send_ipn(payment_id, status=status)
        return dict(payment)

    def _move(self, payment_id: str, *, status: str, paid: Decimal) -> None:
        with self._lock:
            payment = self.payments[payment_id]
            payment["payment_status"] = status
            payment["actually_paid"] = _number(paid)
            price, pay_amount = Decimal(str(payment["price_amount"])), Decimal(str(payment["pay_amount"]))
            payment["actually_paid_at_fiat"] = _number((price * paid / pay_amount).quantize(Decimal("0.01")))
            payment["outcome_amount"] = _number(paid)
            payment["updated_at"] = _now()

    def send_ipn(self, payment_id: str, *, status: str | None = None) -> list[int]:
        """POST the payment (as it is, or as it was at `status`) to the invoice's callback."""
        payment = dict(self.payments[str(payment_id)])
        if status is not None:
            payment["payment_status"] = status
        invoice = self.invoices[str(payment["invoice_id"])]
        url = invoice["ipn_callback_url"]
        if not url:
            return []
        secret = "not-the-secret" if self.fault == "bad_signature" else self.ipn_secret
        times = 2 if self.fault == "duplicate" else 1
        return [self._post_ipn(url, payment, sign(payment, secret)) for _ in range(times)]

    def _post_ipn(self, url: str, body: dict[str, Any], signature: str) -> int:
        # Sent as NOWPayments' Node service writes it: keys unsorted, numbers as JavaScript's.
        data = jsjson.dumps(body).encode()
        headers = {"Content-Type": "application/json", "x-nowpayments-sig": signature}
        if not url.startswith(("http://", "https://")):
            return 0
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s) only
                code = int(response.status)
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            code = 0
        with self._lock:
            self.deliveries.append({"payment_id": body["payment_id"], "status": body["payment_status"], "code": code})
        return code

    def token_for(self, body: dict[str, Any]) -> str | None:
        if body.get("email") != self.email or body.get("password") != self.password:
            return None
        token = f"jwt.{next(self._ids)}"
        with self._lock:
            self.tokens.add(token)
        return token

    def payment_list(self, query: dict[str, str]) -> dict[str, Any]:
        """`GET /v1/payment/`: newest first (or `orderBy=asc`), paged by `limit` and `page`."""
        limit = max(1, min(500, int(query.get("limit") or 10)))
        page = max(0, int(query.get("page") or 0))
        rows = sorted(self.payments.values(), key=lambda p: p["payment_id"], reverse=query.get("orderBy") != "asc")
        date_from, date_to = query.get("dateFrom") or "", query.get("dateTo") or ""
        if date_from:
            rows = [p for p in rows if p["created_at"][:10] >= date_from[:10]]
        if date_to:
            rows = [p for p in rows if p["created_at"][:10] <= date_to[:10]]
        pages = (len(rows) + limit - 1) // limit
        return {
            "data": [dict(p) for p in rows[page * limit : (page + 1) * limit]],
            "limit": limit,
            "page": page,
            "pagesCount": pages,
            "total": len(rows),
        }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "invoices": list(self.invoices.values()),
                "payments": list(self.payments.values()),
                "deliveries": list(self.deliveries),
                "counts": dict(self.counts),
                "fault": self.fault,
            }

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        if "fault" in body:
            self.set_fault(body["fault"] or None, seconds=float(body.get("seconds") or 30))
        if "act" in body:
            return self.act(
                invoice_id=str(body.get("invoice_id") or ""),
                action=str(body["act"]),
                deliver=bool(body.get("deliver", True)),
            )
        if "resend" in body:
            return {"codes": self.send_ipn(str(body["resend"]), status=body.get("status"))}
        return self.snapshot()

    def hang(self) -> None:
        self._release.wait(self.fault_seconds)


class _Handler(SimulatorHandler):
    sim: NowPaymentsSimulator
    protocol_version = "HTTP/1.1"

    def _authorised(self) -> bool:
        if hmac.compare_digest(self.headers.get("x-api-key", ""), self.sim.api_key):
            return True
        self._send(403, {"status": False, "statusCode": 403, "code": "INVALID_API_KEY", "message": "Invalid api key"})
        return False

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        if path == "/v1/status":
            self._send(200, {"message": "OK"})
        elif path == "/_control":
            self._send(200, self.sim.snapshot())
        elif path == "/v1/payment":
            if not self._authorised():
                return
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if bearer not in self.sim.tokens:
                self._send(
                    401,
                    {
                        "status": False,
                        "statusCode": 401,
                        "code": "AUTH_REQUIRED",
                        "message": "Authorization header is empty (Bearer JWTtoken is required)",
                    },
                )
                return
            self.sim._count("list")
            self._send(200, self.sim.payment_list({k: v[0] for k, v in parse_qs(parts.query).items()}))
        elif path.startswith("/v1/payment/"):
            if not self._authorised():
                return
            self.sim._count("payment")
            payment = self.sim.payments.get(path.rsplit("/", 1)[1])
            if payment is None:
                self._send(404, {"status": False, "statusCode": 404, "code": "NOT_FOUND", "message": "Not found"})
            else:
                self._send(200, dict(payment))
        elif path == "/payment":
            invoice_id = (parse_qs(parts.query).get("iid") or [""])[0]
            self._page(invoice_id)
        else:
            self._send(404, {"message": "Not found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        raw = self._body()
        if path == "/v1/invoice":
            self._create(raw)
        elif path == "/v1/auth":
            try:
                token = self.sim.token_for(json.loads(raw or b"{}"))
            except ValueError:
                token = None
            if token is None:
                self._send(
                    401,
                    {
                        "status": False,
                        "statusCode": 401,
                        "code": "INVALID_CREDENTIALS",
                        "message": "Invalid credentials",
                    },
                )
            else:
                self._send(200, {"token": token})
        elif path == "/_control":
            try:
                self._send(200, self.sim.control(json.loads(raw or b"{}")))
            except (ControlError, ValueError) as exc:
                self._send(400, {"error": str(exc)})
        elif path == "/payment/act":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            invoice_id, action = form.get("iid", ""), form.get("action", "")
            try:
                payment = self.sim.act(invoice_id=invoice_id, action=action)
            except ControlError as exc:
                self._send(400, str(exc), content_type="text/plain")
                return
            invoice = self.sim.invoices[invoice_id]
            expired = payment["payment_status"] == "expired"
            target = invoice["cancel_url"] if expired else invoice["success_url"]
            self._redirect(target or f"/payment/?iid={invoice_id}")
        else:
            self._send(404, {"message": "Not found"})

    def _create(self, raw: bytes) -> None:
        if not self._authorised():
            return
        self.sim._count("invoice")
        if self.sim.fault == "hang":
            self.sim.hang()
        if self.sim.fault == "error":
            self._send(500, {"status": False, "statusCode": 500, "message": "Internal server error"})
            return
        try:
            self._send(200, self.sim.create_invoice(json.loads(raw or b"{}")))
        except (ControlError, ValueError, ArithmeticError) as exc:
            self._send(400, {"status": False, "statusCode": 400, "code": "INVALID_REQUEST_PARAMS", "message": str(exc)})

    def _page(self, invoice_id: str) -> None:
        invoice = self.sim.invoices.get(invoice_id)
        if invoice is None:
            self._send(404, "<h1>Invoice not found</h1>", content_type="text/html; charset=utf-8")
            return
        price = html.escape(f"{invoice['price_amount']} {invoice['price_currency'].upper()}")
        iid = html.escape(invoice_id)
        buttons = "".join(
            f'<button type="submit" name="action" value="{value}">{label}</button> '
            for value, label in (
                ("pay", "Pay"),
                ("partial", "Pay partially"),
                ("overpay", "Overpay"),
                ("expire", "Let it expire"),
            )
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>NOWPayments invoice (simulator)</title>"
            "</head><body><h1>NOWPayments invoice (simulator)</h1>"
            f"<p>Invoice {iid}: {price} — {html.escape(invoice['order_description'])}</p>"
            f"<p>Pay in BTC at 1 BTC = {BTC_RATE} {invoice['price_currency'].upper()}.</p>"
            f'<form method="post" action="/payment/act"><input type="hidden" name="iid" value="{iid}">'
            f"{buttons}</form></body></html>"
        )
        self._send(200, page, content_type="text/html; charset=utf-8")
