"""A BTCPay Server stand-in: the Greenfield invoice and webhook endpoints the panel uses, a
checkout page with buttons, signed webhook deliveries and fault modes (see docs/simulator.md).

Framework-free: the standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from simulators.web import SimulatorHandler

DEFAULT_STORE = "demo-store"
DEFAULT_KEY = "demo-btcpay-key"
DEFAULT_SECRET = "demo-btcpay-secret"
# One BTC in the invoice currency: fixed, so paid amounts convert back exactly.
RATE = Decimal("50000")
SATOSHI = Decimal("0.00000001")
FAULT_MODES = frozenset({"none", "hang", "error", "bad_signature", "duplicate", "out_of_order", "no_webhooks"})
INVOICE_LIFETIME_SECONDS = 15 * 60


@dataclass
class Invoice:
    id: str
    store_id: str
    amount: Decimal
    currency: str
    metadata: dict[str, Any]
    checkout: dict[str, Any]
    created: int
    status: str = "New"
    additional: str = "None"
    paid: Decimal = Decimal(0)  # in the invoice currency

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "storeId": self.store_id,
            "amount": f"{self.amount:f}",
            "currency": self.currency,
            "type": "Standard",
            "checkoutLink": f"{base_url}/i/{self.id}",
            "createdTime": self.created,
            "expirationTime": self.created + INVOICE_LIFETIME_SECONDS,
            "monitoringExpiration": self.created + 24 * 3600,
            "status": self.status,
            "additionalStatus": self.additional,
            "availableStatusesForManualMarking": ["Settled", "Invalid"],
            "archived": False,
            "metadata": self.metadata,
            "checkout": self.checkout,
        }

    def payment_methods(self) -> list[dict[str, Any]]:
        due_btc = (self.amount / RATE).quantize(SATOSHI, rounding=ROUND_HALF_UP)
        paid_btc = (self.paid / RATE).quantize(SATOSHI, rounding=ROUND_HALF_UP)
        return [
            {
                "paymentMethodId": "BTC-CHAIN",
                "paymentMethod": "BTC",
                "cryptoCode": "BTC",
                "currency": "BTC",
                "destination": f"bcrt1q{self.id.lower()}",
                "paymentLink": f"bitcoin:bcrt1q{self.id.lower()}?amount={due_btc:f}",
                "rate": f"{RATE:f}",
                "paymentMethodPaid": f"{paid_btc:f}",
                "totalPaid": f"{paid_btc:f}",
                "due": f"{due_btc - paid_btc:f}",
                "amount": f"{due_btc:f}",
                "networkFee": "0",
                "paymentMethodFee": "0",
                "payments": [],
                "activated": True,
            }
        ]


@dataclass
class State:
    store_id: str = DEFAULT_STORE
    api_key: str = DEFAULT_KEY
    webhook_url: str = ""
    webhook_secret: str = DEFAULT_SECRET
    fault: str = "none"
    hang_seconds: float = 30.0
    invoices: dict[str, Invoice] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # what was sent, and the answer
    outbox: list[tuple[bytes, str]] = field(default_factory=list)  # (body, BTCPay-Sig) not sent
    lock: threading.Lock = field(default_factory=threading.Lock)


class BTCPaySimulator:
    """Start it with `start()` (a background thread) or `serve_forever()`; `url` is its base address."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **state: Any) -> None:
        self.state = State(**state)
        self.server = _Server((host, port), self)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> BTCPaySimulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- What the buttons and the control endpoint do -------------------------------------

    def invoice(self, invoice_id: str) -> Invoice:
        try:
            return self.state.invoices[invoice_id]
        except KeyError:
            raise LookupError(f"no invoice {invoice_id}") from None

    def pay(self, invoice_id: str, amount: Decimal | None = None) -> Invoice:
        """A payment arrives (all that is due without `amount`); the invoice moves as BTCPay's does."""
        with self.state.lock:
            invoice = self.invoice(invoice_id)
            amount = invoice.amount - invoice.paid if amount is None else amount
            invoice.paid += amount
            late = invoice.status == "Expired"
            events: list[tuple[str, dict[str, Any]]] = [
                ("InvoiceReceivedPayment", {"afterExpiration": late, "paymentMethod": "BTC-CHAIN"})
            ]
            if invoice.paid < invoice.amount:
                invoice.additional = "PaidPartial"
            elif late:
                # BTCPay leaves a late-paid invoice Expired and says so in additionalStatus.
                invoice.additional = "PaidLate"
            elif invoice.status == "New":
                invoice.status, invoice.additional = "Settled", "PaidOver" if invoice.paid > invoice.amount else "None"
                events += [
                    ("InvoiceProcessing", {"overPaid": invoice.paid > invoice.amount}),
                    ("InvoiceSettled", {"manuallyMarked": False, "overPaid": invoice.paid > invoice.amount}),
                ]
        self.deliver(invoice, events)
        return invoice

    def expire(self, invoice_id: str) -> Invoice:
        with self.state.lock:
            invoice = self.invoice(invoice_id)
            if invoice.status != "New":
                return invoice
            invoice.status = "Expired"
        self.deliver(invoice, [("InvoiceExpired", {"partiallyPaid": invoice.paid > 0})])
        return invoice

    def mark(self, invoice_id: str, status: str) -> Invoice:
        """Staff mark the invoice at BTCPay (Settled or Invalid)."""
        with self.state.lock:
            invoice = self.invoice(invoice_id)
            invoice.status, invoice.additional = status, "Marked"
        self.deliver(invoice, [(f"Invoice{status}", {"manuallyMarked": True})])
        return invoice

    def deliver(self, invoice: Invoice, events: list[tuple[str, dict[str, Any]]]) -> None:
        """POST each event, signed, to the registered webhook, as the fault mode says."""
        fault = self.state.fault
        if fault == "no_webhooks":
            return
        bodies = [self.event_body(invoice, kind, extra) for kind, extra in events]
        if fault == "out_of_order":
            bodies.reverse()
        if fault == "duplicate":
            bodies = [body for body in bodies for _ in range(2)]
        for body in bodies:
            if self.state.webhook_url:
                self.post(body)
            else:
                # No panel registered (the unit tests): kept for the caller to deliver.
                self.state.outbox.append((body, self.signature(body)))

    def signature(self, body: bytes) -> str:
        secret = self.state.webhook_secret
        if self.state.fault == "bad_signature":
            secret = "not-" + secret
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def event_body(self, invoice: Invoice, kind: str, extra: dict[str, Any]) -> bytes:
        event = {
            "deliveryId": secrets.token_urlsafe(12),
            "webhookId": "sim-webhook",
            "originalDeliveryId": None,
            "isRedelivery": False,
            "type": kind,
            "timestamp": int(time.time()),
            "storeId": invoice.store_id,
            "invoiceId": invoice.id,
            "metadata": invoice.metadata,
            **extra,
        }
        return json.dumps(event).encode()

    def post(self, body: bytes) -> int:
        signature = self.signature(body)
        request = urllib.request.Request(  # noqa: S310  (a URL the operator registered)
            self.state.webhook_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "BTCPay-Sig": signature, "User-Agent": "BTCPayServer"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        self.state.deliveries.append({"body": json.loads(body), "status": status})
        return status

    # --- The Greenfield API ----------------------------------------------------------------

    def create_invoice(self, store_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            amount = Decimal(str(body.get("amount")))
        except InvalidOperation:
            return 422, [{"path": "amount", "message": "Invalid amount"}]
        if not amount.is_finite() or amount <= 0:
            return 422, [{"path": "amount", "message": "The amount should be more than 0"}]
        currency = str(body.get("currency") or "").upper()
        if not currency:
            return 422, [{"path": "currency", "message": "Currency is required"}]
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        checkout = body.get("checkout") if isinstance(body.get("checkout"), dict) else {}
        invoice = Invoice(
            id=secrets.token_hex(11).upper(),
            store_id=store_id,
            amount=amount,
            currency=currency,
            metadata=cast(dict[str, Any], metadata),
            checkout=cast(dict[str, Any], checkout),
            created=int(time.time()),
        )
        self.state.invoices[invoice.id] = invoice
        return 200, invoice.as_json(self.url)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sim: BTCPaySimulator) -> None:
        self.sim = sim
        super().__init__(address, _Handler)


class _Handler(SimulatorHandler):
    server_version = "BTCPayServerSimulator/1.0"

    @property
    def sim(self) -> BTCPaySimulator:
        return cast(_Server, self.server).sim

    def _api(self, parts: list[str]) -> tuple[str, list[str]] | None:
        """(store id, the rest) of an authorized Greenfield call; None after answering an error."""
        if self.headers.get("Authorization") != f"token {self.sim.state.api_key}":
            self._send(401, {"code": "unauthenticated", "message": "Authentication is required"})
            return None
        if len(parts) < 4 or parts[3] != self.sim.state.store_id:
            self._send(403, {"code": "missing-permission", "message": "Insufficient API Permissions"})
            return None
        return parts[3], parts[4:]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        sim = self.sim
        if parts[:3] == ["api", "v1", "stores"]:
            found = self._api(parts)
            if found is None:
                return
            _store, rest = found
            if rest == ["invoices"]:
                query = parse_qs(url.query)
                since = int((query.get("startDate") or ["0"])[0])
                skip, take = int((query.get("skip") or ["0"])[0]), int((query.get("take") or ["100"])[0])
                listed = sorted(sim.state.invoices.values(), key=lambda i: -i.created)
                page = [i.as_json(sim.url) for i in listed if i.created >= since][skip : skip + take]
                return self._send(200, page)
            if len(rest) in (2, 3) and rest[0] == "invoices" and rest[1] in sim.state.invoices:
                invoice = sim.state.invoices[rest[1]]
                if len(rest) == 3 and rest[2] == "payment-methods":
                    return self._send(200, invoice.payment_methods())
                if len(rest) == 2:
                    return self._send(200, invoice.as_json(sim.url))
            return self._send(404, {"code": "invoice-not-found", "message": "The invoice was not found"})
        if len(parts) == 2 and parts[0] == "i" and parts[1] in sim.state.invoices:
            return self._send(200, _checkout_page(sim.state.invoices[parts[1]]), content_type="text/html")
        if parts == ["_sim", "state"]:
            state = sim.state
            return self._send(
                200,
                {
                    "fault": state.fault,
                    "webhook_url": state.webhook_url,
                    "invoices": [i.as_json(sim.url) | {"paid": f"{i.paid:f}"} for i in state.invoices.values()],
                    "deliveries": state.deliveries,
                },
            )
        self._send(404, {"code": "not-found", "message": "Not found"})

    def do_POST(self) -> None:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        sim = self.sim
        raw = self._body()
        if parts[:3] == ["api", "v1", "stores"]:
            found = self._api(parts)
            if found is None:
                return
            store, rest = found
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._send(400, {"code": "invalid-json", "message": "Invalid JSON"})
            if rest == ["invoices"]:
                if sim.state.fault == "error":
                    return self._send(500, {"code": "internal-error", "message": "Simulated failure"})
                answer = sim.create_invoice(store, body if isinstance(body, dict) else {})
                if sim.state.fault == "hang":
                    # The invoice exists, the answer comes too late: the caller cannot know.
                    time.sleep(sim.state.hang_seconds)
                return self._send(*answer)
            if rest == ["webhooks"] and isinstance(body, dict):
                sim.state.webhook_url = str(body.get("url") or "")
                sim.state.webhook_secret = str(body.get("secret") or sim.state.webhook_secret)
                return self._send(
                    200,
                    {
                        "id": "sim-webhook",
                        "url": sim.state.webhook_url,
                        "enabled": True,
                        "automaticRedelivery": True,
                        "authorizedEvents": {"everything": True, "specificEvents": []},
                        "secret": sim.state.webhook_secret,
                    },
                )
            return self._send(404, {"code": "not-found", "message": "Not found"})
        if len(parts) == 3 and parts[0] == "i" and parts[1] in sim.state.invoices:
            invoice = sim.state.invoices[parts[1]]
            action = parts[2]
            if action == "pay":
                sim.pay(invoice.id)
            elif action == "pay-partially":
                sim.pay(invoice.id, (invoice.amount / 2).quantize(Decimal("0.01")))
            elif action == "expire":
                sim.expire(invoice.id)
            else:
                return self._send(404, {"code": "not-found", "message": "Not found"})
            redirect = str(invoice.checkout.get("redirectURL") or "")
            if invoice.status == "Settled" and redirect:
                return self._redirect(redirect)
            return self._redirect(f"/i/{invoice.id}")
        if parts == ["_sim", "control"]:
            try:
                command = json.loads(raw or b"{}")
                return self._send(200, _control(sim, command))
            except (ValueError, LookupError, InvalidOperation) as exc:
                return self._send(400, {"error": str(exc)})
        self._send(404, {"code": "not-found", "message": "Not found"})


def _control(sim: BTCPaySimulator, command: dict[str, Any]) -> dict[str, Any]:
    """The tests' handle: {"action": "fault", "mode": ...} | "webhook" | "pay" | "expire" | "mark" | "redeliver" | "reset"."""
    action = command.get("action")
    state = sim.state
    if action == "reset":
        state.invoices.clear()
        state.deliveries.clear()
        state.outbox.clear()
        state.fault = "none"
    elif action == "fault":
        mode = str(command.get("mode") or "none")
        if mode not in FAULT_MODES:
            raise ValueError(f"fault mode is one of {sorted(FAULT_MODES)}")
        state.fault = mode
        state.hang_seconds = float(command.get("seconds") or state.hang_seconds)
    elif action == "webhook":
        state.webhook_url = str(command.get("url") or "")
        state.webhook_secret = str(command.get("secret") or state.webhook_secret)
    elif action == "pay":
        amount = command.get("amount")
        sim.pay(str(command.get("invoice")), None if amount is None else Decimal(str(amount)))
    elif action == "expire":
        sim.expire(str(command.get("invoice")))
    elif action == "mark":
        sim.mark(str(command.get("invoice")), str(command.get("status") or "Settled"))
    elif action == "redeliver":
        # Send one event about the invoice again, whatever its state now (replays, stale events).
        invoice = sim.invoice(str(command.get("invoice")))
        sim.deliver(invoice, [(str(command.get("type") or "InvoiceSettled"), {})])
    else:
        raise ValueError(f"unknown action {action!r}")
    return {"ok": True, "fault": state.fault}


def _checkout_page(invoice: Invoice) -> bytes:
    e = html.escape
    due = invoice.amount - invoice.paid
    buttons = ""
    if invoice.status == "New":
        buttons = (
            f'<form method="post" action="/i/{e(invoice.id)}/pay"><button type="submit">Pay</button></form>'
            f'<form method="post" action="/i/{e(invoice.id)}/pay-partially">'
            '<button type="submit">Pay partially</button></form>'
            f'<form method="post" action="/i/{e(invoice.id)}/expire"><button type="submit">Let it expire</button></form>'
        )
    back = str(invoice.checkout.get("redirectURL") or "")
    link = f'<p><a href="{e(back)}">Return to the store</a></p>' if back else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {e(invoice.id)} — BTCPay Server (simulator)</title></head>
<body>
<h1>BTCPay Server (simulator)</h1>
<p>Invoice <code>{e(invoice.id)}</code>: <strong>{e(f"{invoice.amount:f}")} {e(invoice.currency)}</strong></p>
<p id="status">{e(invoice.status)} ({e(invoice.additional)})</p>
<p>Due: {e(f"{due:f}")} {e(invoice.currency)}</p>
{buttons}
{link}
</body></html>"""
    return page.encode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.btcpay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8911)
    parser.add_argument("--store", default=DEFAULT_STORE)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--webhook-url", default="", help="the panel's /wallet/webhooks/btcpay/ address")
    parser.add_argument("--webhook-secret", default=DEFAULT_SECRET)
    options = parser.parse_args(argv)
    sim = BTCPaySimulator(
        host=options.host,
        port=options.port,
        store_id=options.store,
        api_key=options.api_key,
        webhook_url=options.webhook_url,
        webhook_secret=options.webhook_secret,
    )
    print(f"BTCPay Server simulator on {sim.url} (store {options.store})", flush=True)
    try:
        sim.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.server.server_close()
