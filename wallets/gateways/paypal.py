"""PayPal Checkout through the Orders API v2: create an order, the buyer approves it on
PayPal, the panel captures it, and only a COMPLETED capture of the right amount credits.

https://developer.paypal.com/docs/api/orders/v2/ (create, show, capture),
https://developer.paypal.com/api/rest/authentication/ (client-credentials token) and
https://developer.paypal.com/api/rest/webhooks/rest/ (verify-webhook-signature).

PayPal's webhook bodies are not signed with a secret the panel holds: the panel asks PayPal
to verify each delivery (`/v1/notifications/verify-webhook-signature` with the transmission
headers and our webhook id) and only `verification_status: SUCCESS` counts. Plain requests
through the outbound-URL guard rather than `paypal-server-sdk`: the calls are few, and the
guard and the timeouts must sit on the one session every call uses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kernel.numbers import int_or_none
from kernel.outbound import GuardedAdapter

from .. import conf
from ..quotes import report_at_quote
from ..states import PaymentStatus
from .base import Checkout, Gateway, GatewayError, GatewayRefusal, Kind, Notification, Report, SignatureError

if TYPE_CHECKING:
    from ..models import Payment

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20
# A token is refreshed this long before PayPal says it expires.
TOKEN_MARGIN_SECONDS = 60
# Currencies PayPal takes in whole units. https://developer.paypal.com/reference/currency-codes/
ZERO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
TRANSMISSION_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}
REVERSAL_EVENTS = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED", "CUSTOMER.DISPUTE.CREATED"})


def paypal_value(amount: Decimal, currency: str) -> str | None:
    """The amount as PayPal's `value` string, or None when the currency cannot carry it."""
    exponent = 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2
    quantum = Decimal(1).scaleb(-exponent)
    if amount != amount.quantize(quantum):
        return None
    return str(amount.quantize(quantum))


def _money(value: Any) -> tuple[Decimal | None, str]:
    if not isinstance(value, Mapping):
        return None, ""
    try:
        amount = Decimal(str(value.get("value")))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is not None and not amount.is_finite():
        amount = None
    return amount, str(value.get("currency_code") or "").upper()


class _Token:
    """One cached OAuth2 access token per process, refreshed before it expires."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[str, str, str] | None = None
        self.value = ""
        self.expires_at = 0.0


class PayPalGateway(Gateway):
    code = "paypal"
    label = _("PayPal")
    kind = Kind.HOSTED
    button_label = _("Pay with PayPal")
    sort_order = 20
    # A capture's status (the order's own statuses stop at COMPLETED, which `_order_report`
    # reads through its capture).
    STATES = {
        "COMPLETED": PaymentStatus.PAID,
        "DECLINED": PaymentStatus.FAILED,
        "FAILED": PaymentStatus.FAILED,
        "VOIDED": PaymentStatus.FAILED,
        "REFUNDED": PaymentStatus.REFUNDED,
        "PARTIALLY_REFUNDED": PaymentStatus.REFUNDED,
        "PENDING": PaymentStatus.PENDING,
    }

    def __init__(self) -> None:
        self._token = _Token()

    def configured(self) -> bool:
        # Without the webhook id no delivery could be verified: keep it off.
        return bool(conf.paypal_client_id() and conf.paypal_client_secret() and conf.paypal_webhook_id())

    def default_limits(self) -> tuple[Decimal, Decimal]:
        return conf.paypal_limits()

    def pay_currency(self) -> str:
        # PAYPAL_CURRENCY: the account's currency when it is not the panel's (PayPal in EUR).
        return conf.paypal_currency()

    def checkout_origins(self) -> tuple[str, ...]:
        # The approval link is on www.paypal.com (or the sandbox's); a local API serves its own.
        api = urlsplit(conf.paypal_api_url())
        return ("https://www.paypal.com", "https://www.sandbox.paypal.com", f"{api.scheme}://{api.netloc}")

    def check(self, *, amount: Decimal, currency: str, data: Mapping[str, Any]) -> None:
        if paypal_value(amount, currency) is None:
            raise GatewayRefusal(gettext("PayPal takes %(currency)s amounts in whole cents.") % {"currency": currency})

    # --- transport -----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = GuardedAdapter(max_retries=0, allow_private=conf.paypal_allow_private_urls())
        for prefix in ("http://", "https://"):
            session.mount(prefix, adapter)
        return session

    def _url(self, path: str) -> str:
        return conf.paypal_api_url().rstrip("/") + path

    def _access_token(self) -> str:
        token = self._token
        key = (conf.paypal_api_url(), conf.paypal_client_id(), conf.paypal_client_secret())
        with token.lock:
            if token.key == key and token.value and time.monotonic() < token.expires_at:
                return token.value
            try:
                response = self._session().post(
                    self._url("/v1/oauth2/token"),
                    data={"grant_type": "client_credentials"},
                    auth=(key[1], key[2]),
                    headers={"Accept": "application/json"},
                    timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                )
            except requests.RequestException as exc:
                raise GatewayError(f"PayPal token request failed: {exc}") from exc
            body = self._json(response)
            if response.status_code != 200 or not body.get("access_token"):
                raise GatewayError(f"PayPal refused the client credentials: HTTP {response.status_code}")
            expires_in = int_or_none(body.get("expires_in")) or 0
            token.key = key
            token.value = str(body["access_token"])
            token.expires_at = time.monotonic() + max(expires_in - TOKEN_MARGIN_SECONDS, 0)
            return token.value

    def _forget_token(self) -> None:
        with self._token.lock:
            self._token.value = ""

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, request_id: str = ""
    ) -> tuple[int, dict[str, Any]]:
        """One API call; a 401 (an expired token) is retried once with a new token."""
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._access_token()}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            if request_id:
                # PayPal answers a repeated request id with the first call's result.
                headers["PayPal-Request-Id"] = request_id
            try:
                response = self._session().request(
                    method,
                    self._url(path),
                    data=None if body is None else json.dumps(body),
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                )
            except requests.RequestException as exc:
                raise GatewayError(f"PayPal {method} {path} failed: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                self._forget_token()
                continue
            return response.status_code, self._json(response)
        raise GatewayError(f"PayPal {method} {path}: not authorised")  # pragma: no cover

    # --- payments ------------------------------------------------------------------------

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        """Create the order. A network call: never call it inside a transaction."""
        # A payment in another currency asks for the amount quoted at creation.
        currency = payment.pay_currency or payment.currency
        total = payment.pay_amount if payment.pay_currency and payment.pay_amount is not None else payment.total
        value = paypal_value(total, currency)
        if value is None:
            raise GatewayError(f"payment {payment.pk}: {total} is not whole {currency} cents")
        order = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": str(payment.pk),
                    "custom_id": str(payment.pk),
                    "invoice_id": f"payment-{payment.pk}",
                    "description": f"Balance top-up #{payment.pk}",
                    "amount": {"currency_code": currency, "value": value},
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": f"{return_url}?gateway={self.code}",
                        "cancel_url": f"{return_url}?gateway={self.code}&checkout=cancel",
                        "shipping_preference": "NO_SHIPPING",
                        "user_action": "PAY_NOW",
                    }
                }
            },
        }
        status, body = self._call("POST", "/v2/checkout/orders", body=order, request_id=f"payment-{payment.pk}-order")
        if status not in (200, 201) or not body.get("id"):
            raise GatewayError(f"PayPal refused the order: HTTP {status} {body.get('name', '')}")
        links = {
            str(link.get("rel")): str(link.get("href")) for link in body.get("links") or [] if isinstance(link, dict)
        }
        url = links.get("payer-action") or links.get("approve")
        if not url:
            raise GatewayError("PayPal returned an order without an approval link")
        return Checkout(redirect_url=url, reference=str(body["id"]))

    def capture(self, *, payment: Payment) -> Report:
        """Capture the approved order; the same request id makes a second capture harmless."""
        if not payment.external_ref:
            raise GatewayError(f"payment {payment.pk} has no PayPal order")
        status, body = self._call(
            "POST",
            f"/v2/checkout/orders/{payment.external_ref}/capture",
            body={},
            request_id=f"payment-{payment.pk}-capture",
        )
        if status in (200, 201):
            return self._order_report(body)
        issues = {str(d.get("issue")) for d in body.get("details") or [] if isinstance(d, dict)}
        if status == 422 and "ORDER_ALREADY_CAPTURED" in issues:
            return self.fetch(payment=payment)
        if status == 422 and issues & {"INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED"}:
            # The buyer can pick another funding source on PayPal: still pending.
            return Report(status=PaymentStatus.PENDING, note="PayPal: the payment method was declined")
        if status == 422 and "ORDER_NOT_APPROVED" in issues:
            return Report(status=PaymentStatus.PENDING, note="PayPal: the order is not approved yet")
        raise GatewayError(f"PayPal did not capture order {payment.external_ref}: HTTP {status}")

    def complete_return(self, *, payment: Payment) -> Notification:
        """The buyer came back from PayPal with the order id: capture it now."""
        report = self.capture(payment=payment)
        return Notification(
            event_id=f"return:{payment.external_ref}",
            reference=payment.external_ref,
            payment_id=payment.pk,
            report=report,
            raw={"return": payment.external_ref},
        )

    def fetch(self, *, payment: Payment) -> Report:
        if not payment.external_ref:
            raise GatewayError(f"payment {payment.pk} has no PayPal order")
        status, body = self._call("GET", f"/v2/checkout/orders/{payment.external_ref}")
        if status != 200:
            raise GatewayError(f"PayPal did not return order {payment.external_ref}: HTTP {status}")
        return report_at_quote(payment=payment, report=self._order_report(body))

    def collect(self, *, payment: Payment) -> Report:
        """An order the buyer approved but never came back from (and whose
        CHECKOUT.ORDER.APPROVED webhook was lost) is captured here, under the same
        PayPal-Request-Id as every other capture of this payment: PayPal answers a repeat with
        the first capture, so the money is captured once whoever asks first."""
        if not payment.external_ref:
            raise GatewayError(f"payment {payment.pk} has no PayPal order")
        status, body = self._call("GET", f"/v2/checkout/orders/{payment.external_ref}")
        if status != 200:
            raise GatewayError(f"PayPal did not return order {payment.external_ref}: HTTP {status}")
        if body.get("status") == "APPROVED" and _first_capture(body) is None:
            return report_at_quote(payment=payment, report=self.capture(payment=payment))
        return report_at_quote(payment=payment, report=self._order_report(body))

    def _order_report(self, order: Mapping[str, Any]) -> Report:
        """An order's state: its first capture decides; an order not captured yet is pending."""
        capture = _first_capture(order)
        if capture is None:
            if order.get("status") == "VOIDED":
                return Report(status=PaymentStatus.FAILED, note="PayPal: the order was voided")
            return Report(status=PaymentStatus.PENDING, note=f"PayPal order {order.get('status', '')}")
        return self._capture_report(capture)

    def _capture_report(self, capture: Mapping[str, Any]) -> Report:
        amount, currency = _money(capture.get("amount"))
        state = str(capture.get("status") or "")
        return Report(status=self.state(state), amount=amount, currency=currency, note=f"PayPal capture {state}")

    # --- notifications -------------------------------------------------------------------

    def verify_notification(self, request: HttpRequest) -> Notification:
        """Ask PayPal whether it sent this delivery; only SUCCESS counts."""
        webhook_id = conf.paypal_webhook_id()
        if not webhook_id:
            raise SignatureError("no PayPal webhook id configured")
        try:
            event = json.loads(request.body)
        except ValueError as exc:
            raise SignatureError("the event is not JSON") from exc
        if not isinstance(event, dict):
            raise SignatureError("the event is not a JSON object")
        check: dict[str, Any] = {}
        for field, header in TRANSMISSION_HEADERS.items():
            value = request.headers.get(header, "")
            if not value:
                raise SignatureError(f"missing {header}")
            check[field] = value
        check["webhook_id"] = webhook_id
        check["webhook_event"] = event
        try:
            status, body = self._call("POST", "/v1/notifications/verify-webhook-signature", body=check)
        except GatewayError as exc:
            # PayPal could not be asked: refuse, PayPal delivers again.
            raise SignatureError(f"could not verify: {exc}") from exc
        if status != 200 or body.get("verification_status") != "SUCCESS":
            raise SignatureError(f"verification_status {body.get('verification_status')!r}")
        return self.read_event(event)

    def read_event(self, event: Mapping[str, Any]) -> Notification:
        """A verified event as a notification; events about nothing we track carry no report."""
        event_type = str(event.get("event_type") or "")
        event_id = str(event.get("id") or "")
        resource = event.get("resource")
        raw = dict(event)
        if not isinstance(resource, Mapping):
            return Notification(event_id=event_id, reference="", raw=raw)
        if event_type == "CHECKOUT.ORDER.APPROVED":
            # The buyer approved but may never come back: `confirm` captures.
            return Notification(
                event_id=event_id,
                reference=str(resource.get("id") or ""),
                payment_id=_payment_id(resource),
                report=Report(status=PaymentStatus.PENDING, note="PayPal: order approved"),
                raw=raw,
            )
        if event_type in ("PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.PENDING"):
            report = self._capture_report(resource)
            if event_type == "PAYMENT.CAPTURE.DENIED":
                report = Report(
                    status=PaymentStatus.FAILED,
                    amount=report.amount,
                    currency=report.currency,
                    note="PayPal: the capture was denied",
                )
            return Notification(
                event_id=event_id,
                reference=_related_order_id(resource),
                payment_id=_payment_id(resource),
                report=report,
                raw=raw,
            )
        if event_type in REVERSAL_EVENTS:
            return self._reversal(event_type, event_id, resource, raw)
        return Notification(event_id=event_id, reference="", raw=raw)

    def _reversal(
        self, event_type: str, event_id: str, resource: Mapping[str, Any], raw: dict[str, Any]
    ) -> Notification:
        """Money going back: a refund, a reversal, a dispute opened. The amount is what goes back."""
        if event_type == "CUSTOMER.DISPUTE.CREATED":
            amount, currency = _money(resource.get("dispute_amount"))
            transactions = resource.get("disputed_transactions") or []
            first = transactions[0] if transactions and isinstance(transactions[0], Mapping) else {}
            capture_id = str(first.get("seller_transaction_id") or "")
            order_id = ""
        else:
            amount, currency = _money(resource.get("amount"))
            order_id = _related_order_id(resource)
            capture_id = (
                _up_capture_id(resource) if event_type == "PAYMENT.CAPTURE.REFUNDED" else str(resource.get("id") or "")
            )
        if not order_id and capture_id:
            order_id = self._order_of_capture(capture_id)
        return Notification(
            event_id=event_id,
            reference=order_id,
            payment_id=_payment_id(resource),
            report=Report(
                status=PaymentStatus.REFUNDED, amount=amount, currency=currency, note=f"PayPal: {event_type}"
            ),
            raw=raw,
        )

    def _order_of_capture(self, capture_id: str) -> str:
        """The order a capture belongs to (refund and dispute events name only the capture)."""
        status, body = self._call("GET", f"/v2/payments/captures/{capture_id}")
        if status != 200:
            raise SignatureError(f"PayPal does not know capture {capture_id}: HTTP {status}")
        return _related_order_id(body)

    def confirm(self, *, payment: Payment, notification: Notification) -> Report | None:
        """An approved order is captured here when the buyer did not come back to do it."""
        raw_type = notification.raw.get("event_type")
        report = notification.report
        if raw_type == "CHECKOUT.ORDER.APPROVED" and payment.status == PaymentStatus.PENDING:
            report = self.capture(payment=payment)
        # Paid (or refunded) in the currency quoted at creation: credit in the panel's.
        return None if report is None else report_at_quote(payment=payment, report=report)


def _first_capture(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for unit in order.get("purchase_units") or []:
        if not isinstance(unit, Mapping):
            continue
        captures = (unit.get("payments") or {}).get("captures") or []
        for capture in captures:
            if isinstance(capture, Mapping):
                return capture
    return None


def _payment_id(resource: Mapping[str, Any]) -> int | None:
    found = int_or_none(resource.get("custom_id"))
    if found is None:
        for unit in resource.get("purchase_units") or []:
            if isinstance(unit, Mapping):
                found = int_or_none(unit.get("custom_id"))
                break
    return found


def _related_order_id(resource: Mapping[str, Any]) -> str:
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    return str(related.get("order_id") or "") if isinstance(related, Mapping) else ""


def _up_capture_id(refund: Mapping[str, Any]) -> str:
    for link in refund.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "up":
            return str(link.get("href") or "").rstrip("/").rsplit("/", 1)[-1]
    return ""
