"""BTCPay Server through its Greenfield API: an invoice per payment, paid on the server's checkout page.

https://docs.btcpayserver.org/API/Greenfield/v1/ — `POST /api/v1/stores/{storeId}/invoices`
creates the invoice (our payment id as `metadata.orderId`), the customer pays at its
`checkoutLink`, and the store's webhook reports changes, signed in the `BTCPay-Sig` header
as `sha256=` + HMAC-SHA256 of the raw body with the webhook's secret.

A webhook only says that something happened to an invoice; the state we act on is always
the invoice read back from the API (`confirm` → `fetch`), so a replayed or out-of-order
delivery can only ever apply the invoice's current state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from kernel.money import MoneyFormatError, to_decimal
from kernel.numbers import int_or_none
from kernel.outbound import GuardedAdapter

from .. import conf
from ..states import PaymentStatus
from .base import Checkout, Gateway, GatewayError, Kind, Notification, Report, SignatureError

if TYPE_CHECKING:
    from ..models import Payment

SIGNATURE_HEADER = "BTCPay-Sig"
CENT = Decimal("0.01")
LIST_PAGE_SIZE = 100
# Webhook event types about an invoice (the others, payouts and payment requests, are ignored).
INVOICE_EVENTS = frozenset(
    {
        "InvoiceCreated",
        "InvoiceReceivedPayment",
        "InvoicePaymentSettled",
        "InvoiceProcessing",
        "InvoiceExpired",
        "InvoiceSettled",
        "InvoiceInvalid",
    }
)


def signature_for(body: bytes, secret: str) -> str:
    """The `BTCPay-Sig` header value BTCPay Server sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return to_decimal(str(value))
    except (MoneyFormatError, ValueError, ArithmeticError):
        return None


class BTCPayGateway(Gateway):
    code = "btcpay"
    label = _("Bitcoin (BTCPay Server)")
    kind = Kind.HOSTED
    button_label = _("Pay with Bitcoin")
    sort_order = 20
    # The invoice's `status`; `additionalStatus` refines it in `invoice_report`.
    STATES = {
        "New": PaymentStatus.PENDING,
        "Processing": PaymentStatus.PENDING,  # paid, waiting for confirmations
        "Settled": PaymentStatus.PAID,
        "Expired": PaymentStatus.FAILED,
        "Invalid": PaymentStatus.FAILED,
    }

    def configured(self) -> bool:
        return bool(
            conf.btcpay_url() and conf.btcpay_store_id() and conf.btcpay_api_key() and conf.btcpay_webhook_secret()
        )

    def default_limits(self) -> tuple[Decimal, Decimal]:
        return conf.btcpay_limits()

    def instructions(self) -> str:
        return str(_("You pay on our BTCPay Server page; your balance is credited once the payment settles."))

    def checkout_origins(self) -> tuple[str, ...]:
        parts = urlsplit(conf.btcpay_url())
        return (f"{parts.scheme}://{parts.netloc}",) if parts.scheme and parts.netloc else ()

    # --- The Greenfield API --------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        # The server's address is the owner's, but requests still go only where the
        # outbound guard allows (a private one only when BTCPAY_ALLOW_PRIVATE_URL says so).
        adapter = GuardedAdapter(max_retries=0, allow_private=conf.btcpay_allow_private_url())
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["Authorization"] = f"token {conf.btcpay_api_key()}"
        return session

    def _store_url(self, path: str) -> str:
        return f"{conf.btcpay_url()}/api/v1/stores/{conf.btcpay_store_id()}{path}"

    def _call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        timeout = conf.btcpay_timeout()
        try:
            with self._session() as session:
                response = session.request(
                    method, self._store_url(path), json=body, params=params, timeout=(min(timeout, 5.0), timeout)
                )
        except requests.RequestException as exc:
            raise GatewayError(f"BTCPay Server {method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code != 200:
            raise GatewayError(f"BTCPay Server {method} {path}: HTTP {response.status_code} {response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise GatewayError(f"BTCPay Server {method} {path}: the answer is not JSON") from exc

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        """Create the invoice. A network call: never call it inside a transaction."""
        body = {
            "amount": f"{payment.total:f}",
            "currency": payment.currency,
            "metadata": {"orderId": str(payment.pk), "itemDesc": f"Balance top-up #{payment.pk}"},
            "checkout": {"redirectURL": f"{return_url}?checkout=success", "redirectAutomatically": True},
        }
        invoice = self._call("POST", "/invoices", body=body)
        if not isinstance(invoice, dict) or not invoice.get("id") or not invoice.get("checkoutLink"):
            raise GatewayError("BTCPay Server returned an invoice without id or checkoutLink")
        return Checkout(redirect_url=str(invoice["checkoutLink"]), reference=str(invoice["id"]))

    def invoice_get(self, invoice_id: str) -> dict[str, Any]:
        invoice = self._call("GET", f"/invoices/{quote(invoice_id, safe='')}")
        if not isinstance(invoice, dict):
            raise GatewayError("BTCPay Server returned an invoice that is not an object")
        return invoice

    def paid_in_invoice_currency(self, invoice_id: str) -> Decimal:
        """What was paid towards the invoice, in the invoice's currency, from its payment methods.

        Each method reports `totalPaid` (everything paid to the invoice, in that method's
        currency) and `rate` (that currency in the invoice's currency).
        """
        methods = self._call("GET", f"/invoices/{quote(invoice_id, safe='')}/payment-methods")
        paid = Decimal(0)
        for method in methods if isinstance(methods, list) else []:
            if not isinstance(method, dict):
                continue
            total, rate = _decimal(method.get("totalPaid")), _decimal(method.get("rate"))
            if total is not None and rate is not None and total > 0 and rate > 0:
                paid = max(paid, total * rate)
        return paid

    def invoice_report(self, invoice: Mapping[str, Any], *, payment: Payment | None = None) -> Report:
        """An invoice as the panel's state; `payment` converts a marked partial payment's credit."""
        status, extra = str(invoice.get("status") or ""), str(invoice.get("additionalStatus") or "None")
        amount, currency = _decimal(invoice.get("amount")), str(invoice.get("currency") or "").upper()
        note = f"BTCPay: {status}" + ("" if extra == "None" else f" ({extra})")
        if status == "Expired" and extra == "PaidLate":
            # Paid in full after it expired: BTCPay leaves it Expired, but the money arrived.
            return Report(status=PaymentStatus.PAID, amount=amount, currency=currency, note=note)
        if status == "Settled" and extra == "Marked":
            # Staff settled it by hand at BTCPay, perhaps after a partial payment: credit what
            # the payment methods say arrived, never the whole amount on trust.
            paid = self.paid_in_invoice_currency(str(invoice.get("id") or ""))
            if amount is not None and paid >= amount:
                return Report(status=PaymentStatus.PAID, amount=amount, currency=currency, note=note)
            credit = Decimal(0)
            if payment is None:
                credit = paid.quantize(CENT, rounding=ROUND_DOWN) if currency == conf.currency() else credit
            elif payment.total > 0 and currency == payment.currency:
                # The customer paid amount + fee: the fee's share of what arrived is not credited.
                credit = (paid * payment.amount / payment.total).quantize(CENT, rounding=ROUND_DOWN)
            return Report(status=PaymentStatus.PAID, amount=paid, currency=currency, note=note, credit=credit)
        return Report(status=self.state(status), amount=amount, currency=currency, note=note)

    # --- Notifications -------------------------------------------------------------------

    def verify_notification(self, request: HttpRequest) -> Notification:
        secret = conf.btcpay_webhook_secret()
        if not secret:
            raise SignatureError("no webhook secret configured")
        body = request.body
        sent = request.headers.get(SIGNATURE_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), signature_for(body, secret).encode()):
            raise SignatureError("BTCPay-Sig is missing or does not match")
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise SignatureError("the signed body is not JSON") from exc
        if not isinstance(event, dict):
            raise SignatureError("the event is not a JSON object")
        return self.read_event(event)

    def read_event(self, event: Mapping[str, Any]) -> Notification:
        raw = dict(event)
        event_id = str(event.get("deliveryId") or "")
        event_type = str(event.get("type") or "")
        invoice_id = str(event.get("invoiceId") or "")
        if event_type not in INVOICE_EVENTS or not invoice_id or event.get("storeId") != conf.btcpay_store_id():
            return Notification(event_id=event_id, reference="", raw=raw)
        metadata = event.get("metadata")
        order_id = metadata.get("orderId") if isinstance(metadata, Mapping) else None
        # Not acted on: `confirm` reads the invoice back.
        report = Report(status=PaymentStatus.PENDING, note=f"BTCPay: {event_type}")
        return Notification(
            event_id=event_id, reference=invoice_id, payment_id=int_or_none(order_id), report=report, raw=raw
        )

    def confirm(self, *, payment: Payment, notification: Notification) -> Report | None:
        return self._read(payment=payment, invoice_id=notification.reference or payment.external_ref)

    def fetch(self, *, payment: Payment) -> Report:
        if not payment.external_ref:
            raise GatewayError(f"payment {payment.pk} has no BTCPay invoice")
        return self._read(payment=payment, invoice_id=payment.external_ref)

    def _read(self, *, payment: Payment, invoice_id: str) -> Report:
        invoice = self.invoice_get(invoice_id)
        metadata = invoice.get("metadata")
        order_id = metadata.get("orderId") if isinstance(metadata, Mapping) else None
        if str(order_id or "") != str(payment.pk) or invoice.get("storeId") != conf.btcpay_store_id():
            # An invoice of the store that is not this payment's: act on nothing.
            return Report(status=PaymentStatus.PENDING, note=f"BTCPay invoice {invoice_id} is not payment {payment.pk}")
        return self.invoice_report(invoice, payment=payment)

    def list_recent(self, *, since: datetime) -> list[tuple[str, Report]]:
        """The store's invoices created since `since`, as (invoice id, report), for reconciliation."""
        found: list[tuple[str, Report]] = []
        skip = 0
        while True:
            params = {"startDate": math.floor(since.timestamp()), "skip": skip, "take": LIST_PAGE_SIZE}
            page = self._call("GET", "/invoices", params=params)
            if not isinstance(page, list):
                raise GatewayError("BTCPay Server returned an invoice list that is not a list")
            for invoice in page:
                if isinstance(invoice, dict) and invoice.get("id"):
                    found.append((str(invoice["id"]), self.invoice_report(invoice)))
            if len(page) < LIST_PAGE_SIZE:
                return found
            skip += LIST_PAGE_SIZE
