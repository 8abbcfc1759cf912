"""NOWPayments: a hosted crypto invoice per payment, confirmed by signed IPN callbacks.

The API (https://documenter.getpostman.com/view/7907941/2s93JusNJt):

- `POST /v1/invoice` (header `x-api-key`) creates an invoice priced in the panel's
  currency (`price_amount`, `price_currency`) with our payment id as `order_id`; the
  customer pays on its `invoice_url`, choosing a coin there.
- Each change of the payment made on the invoice is POSTed to `ipn_callback_url` with the
  header `x-nowpayments-sig`: the hex HMAC-SHA512, keyed with the IPN secret, of the JSON
  body re-serialised with its keys sorted and no spaces.
- `GET /v1/payment/{payment_id}` is the payment's true state. A notification is only a
  hint: the payment is read back before anything is credited.

Amounts: the invoice quotes `pay_amount` of `pay_currency` for `price_amount` of ours, and
the customer may send another amount (`actually_paid`). What arrived is converted at that
quoted rate (price_amount × actually_paid / pay_amount) and credited, at most the amount
asked (the settle path caps it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import requests
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from kernel import jsjson
from kernel.numbers import int_or_none
from kernel.outbound import GuardedAdapter
from kernel.site import site_url

from .. import conf
from ..states import PaymentStatus
from .base import Checkout, Gateway, GatewayError, Kind, Notification, Report, SignatureError

if TYPE_CHECKING:
    from ..models import Payment

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-nowpayments-sig"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 20.0
USER_AGENT = "smmpanel-nowpayments/1"
INVOICE_ORIGIN = "https://nowpayments.io"
LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 50
# A payment's `payment_status` (NOWPayments' list) onto the panel's. Money is credited only
# once it reached the merchant (`finished`), or at the end of an underpayment
# (`partially_paid`: NOWPayments keeps what arrived; we credit that part).
STATUS_CREDITED = frozenset({"finished", "partially_paid"})


def signature(body: Mapping[str, Any], secret: str) -> str:
    """The `x-nowpayments-sig` of a body: HMAC-SHA512 of its sorted-key, compact JSON."""
    return _hmac(canonical_json(body), secret)


def canonical_json(body: Mapping[str, Any]) -> str:
    # What JavaScript's JSON.stringify of the key-sorted object gives: no spaces, numbers
    # as JavaScript writes them, non-ASCII as is. Nested objects are sorted too.
    return jsjson.dumps(body, sort_keys=True)


def _hmac(text: str, secret: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def signed_forms(body: Mapping[str, Any]) -> list[str]:
    """The serialisations NOWPayments' documented recipes produce for a body. They agree on
    a flat body; for a nested one (the `fee` object) Node's `JSON.stringify(params,
    Object.keys(params).sort())` keeps only top-level key names inside it, while the PHP and
    Python recipes sort it recursively (PHP also escapes non-ASCII)."""
    forms = [
        canonical_json(body),
        jsjson.dumps(body, sort_keys=True, keys=sorted(body)),
        jsjson.dumps(body, sort_keys=True, ensure_ascii=True),
    ]
    return list(dict.fromkeys(forms))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class NowPaymentsGateway(Gateway):
    code = "nowpayments"
    label = _("Crypto (NOWPayments)")
    kind = Kind.HOSTED
    button_label = _("Pay with crypto")
    sort_order = 15
    STATES = {
        "waiting": PaymentStatus.PENDING,
        "confirming": PaymentStatus.PENDING,
        "confirmed": PaymentStatus.PENDING,
        "sending": PaymentStatus.PENDING,
        "partially_paid": PaymentStatus.PAID,
        "finished": PaymentStatus.PAID,
        "failed": PaymentStatus.FAILED,
        "expired": PaymentStatus.FAILED,
        "refunded": PaymentStatus.REFUNDED,
    }

    def configured(self) -> bool:
        # Without the IPN secret no notification could ever be trusted: keep it off.
        return bool(conf.nowpayments_api_key() and conf.nowpayments_ipn_secret())

    def default_limits(self) -> tuple[Decimal, Decimal]:
        return conf.nowpayments_limits()

    def checkout_origins(self) -> tuple[str, ...]:
        # The invoice page lives on nowpayments.io; a simulator serves it from the API's origin.
        api = urlsplit(conf.nowpayments_api_url())
        return tuple(dict.fromkeys((INVOICE_ORIGIN, f"{api.scheme}://{api.netloc}")))

    def instructions(self) -> str:
        return str(_("Pay in Bitcoin, USDT, Ethereum and other coins on NOWPayments' page."))

    # --- HTTP ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        # The outbound-URL guard; loopback (the simulator) only where provider URLs may be.
        adapter = GuardedAdapter(max_retries=0, allow_private=conf.nowpayments_allow_private())
        for prefix in ("http://", "https://"):
            session.mount(prefix, adapter)
        return session

    def _url(self, path: str) -> str:
        base = conf.nowpayments_api_url().rstrip("/")
        base = base.removesuffix("/v1")
        return f"{base}/v1/{path}"

    def _call(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, token: str = ""
    ) -> dict[str, Any]:
        headers = {"x-api-key": conf.nowpayments_api_key(), "User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self._session() as session:
                response = session.request(
                    method,
                    self._url(path),
                    json=body,
                    headers=headers,
                    timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            raise GatewayError(f"NOWPayments {method} {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 400:
            raise GatewayError(f"NOWPayments {method} {path}: HTTP {response.status_code} {response.text[:200]}")
        try:
            data = response.json()
        except ValueError as exc:
            raise GatewayError(f"NOWPayments {method} {path}: not JSON") from exc
        if not isinstance(data, dict):
            raise GatewayError(f"NOWPayments {method} {path}: not a JSON object")
        return data

    # --- Payments --------------------------------------------------------------------------

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        """Create the invoice. A network call: never inside a transaction. A timeout fails the
        payment (the caller tells the customer to retry); its invoice, if NOWPayments made one,
        names a payment that is failed, so a late payment on it still settles through the IPN."""
        body = {
            "price_amount": float(payment.total),
            "price_currency": payment.currency.lower(),
            "order_id": str(payment.pk),
            "order_description": f"Balance top-up #{payment.pk}",
            "ipn_callback_url": site_url(reverse("wallets:webhook", kwargs={"gateway": self.code})),
            "success_url": f"{return_url}?checkout=success",
            "cancel_url": f"{return_url}?checkout=cancel",
        }
        invoice = self._call("POST", "invoice", body=body)
        invoice_id = str(invoice.get("id") or "")
        invoice_url = str(invoice.get("invoice_url") or "")
        if not invoice_id or not invoice_url.startswith(("https://", "http://")):
            raise GatewayError("NOWPayments returned an invoice without id or invoice_url")
        return Checkout(redirect_url=invoice_url, reference=invoice_id)

    def verify_notification(self, request: HttpRequest) -> Notification:
        secret = conf.nowpayments_ipn_secret()
        if not secret:
            raise SignatureError("no IPN secret configured")
        received = request.headers.get(SIGNATURE_HEADER, "")
        if not received:
            raise SignatureError(f"no {SIGNATURE_HEADER} header")
        try:
            # Each number keeps its text: the signature covers it as NOWPayments wrote it.
            signed = jsjson.loads(request.body)
            body = json.loads(request.body)
        except ValueError as exc:
            raise SignatureError("the body is not JSON") from exc
        if not isinstance(body, dict) or not isinstance(signed, dict):
            raise SignatureError("the body is not a JSON object")
        received = received.strip().lower()
        matches = [hmac.compare_digest(_hmac(form, secret), received) for form in signed_forms(signed)]
        if not any(matches):
            raise SignatureError("the signature does not match")
        status = str(body.get("payment_status") or "")
        np_payment_id = str(body.get("payment_id") or "")
        return Notification(
            event_id=f"{np_payment_id}:{status}:{body.get('updated_at') or ''}",
            reference=str(body.get("invoice_id") or ""),
            payment_id=int_or_none(body.get("order_id")),
            # A hint only: `confirm` reads the payment back before anything moves.
            report=Report(status=self.state(status), note=f"NOWPayments: {status}"),
            raw=dict(body),
        )

    def confirm(self, *, payment: Payment, notification: Notification) -> Report | None:
        np_payment_id = str(notification.raw.get("payment_id") or "")
        if not np_payment_id:
            return None
        return self._fetch_payment(payment=payment, np_payment_id=np_payment_id)

    def fetch(self, *, payment: Payment) -> Report:
        raw = payment.raw_notification if isinstance(payment.raw_notification, dict) else {}
        np_payment_id = str(raw.get("payment_id") or "")
        if not np_payment_id and self.can_list():
            # No IPN arrived: find the payment made on our invoice in the account's list.
            since = payment.created_at - timedelta(days=1)
            found = [p for p in self._list_payments(since=since) if str(p.get("order_id") or "") == str(payment.pk)]
            # The most advanced payment on the invoice (a customer may start several).
            found.sort(key=lambda p: self.state(str(p.get("payment_status") or "")) != PaymentStatus.PAID)
            np_payment_id = str(found[0].get("payment_id") or "") if found else ""
        if not np_payment_id:
            # Nobody has paid on the invoice yet (NOWPayments makes a payment only then).
            return Report(status=PaymentStatus.PENDING, note="NOWPayments: no payment on the invoice yet")
        return self._fetch_payment(payment=payment, np_payment_id=np_payment_id)

    def can_list(self) -> bool:
        return bool(conf.nowpayments_email() and conf.nowpayments_password())

    def list_recent(self, *, since: datetime) -> list[tuple[str, Report]]:
        """The account's payments created since `since`, as (invoice id, report) pairs: the
        invoice id is our payment's `external_ref`. `credit` is what arrived at the invoice's
        quoted rate (the settle path credits at most the payment's amount); `fetch` gives the
        exact share of a payment with a fee. Empty without the account's e-mail and password
        (NOWPayments lists payments only to a JWT made from them)."""
        if not self.can_list():
            return []
        pairs = []
        for data in self._list_payments(since=since):
            reference = str(data.get("invoice_id") or "")
            if reference:
                pairs.append((reference, self._report_from_list(data)))
        return pairs

    def _report_from_list(self, data: Mapping[str, Any]) -> Report:
        status_text = str(data.get("payment_status") or "")
        status = self.state(status_text)
        price_amount = _decimal(data.get("price_amount"))
        currency = str(data.get("price_currency") or "").upper()
        pay_amount = _decimal(data.get("pay_amount"))
        actually_paid = _decimal(data.get("actually_paid"))
        credit = None
        if status == PaymentStatus.PAID and price_amount is not None and pay_amount and actually_paid is not None:
            credit = (price_amount * actually_paid / pay_amount).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
        return Report(
            status=status, amount=price_amount, currency=currency, note=f"NOWPayments: {status_text}", credit=credit
        )

    def _token(self) -> str:
        answer = self._call(
            "POST", "auth", body={"email": conf.nowpayments_email(), "password": conf.nowpayments_password()}
        )
        token = str(answer.get("token") or "")
        if not token:
            raise GatewayError("NOWPayments returned no token for the account's e-mail and password")
        return token

    def _list_payments(self, *, since: datetime) -> list[dict[str, Any]]:
        """`GET /v1/payment/`, newest first, page by page, from `since` on (bounded)."""
        token = self._token()
        found: list[dict[str, Any]] = []
        date_from = since.astimezone(UTC).strftime("%Y-%m-%d")
        date_to = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
        for page in range(LIST_MAX_PAGES):
            query = urlencode(
                {
                    "limit": LIST_PAGE_SIZE,
                    "page": page,
                    "sortBy": "created_at",
                    "orderBy": "desc",
                    "dateFrom": date_from,
                    "dateTo": date_to,
                }
            )
            answer = self._call("GET", f"payment/?{query}", token=token)
            rows = answer.get("data")
            if not isinstance(rows, list):
                raise GatewayError("NOWPayments' payment list has no data")
            found.extend(row for row in rows if isinstance(row, dict))
            pages = int_or_none(answer.get("pagesCount")) or 0
            if page + 1 >= pages or not rows:
                break
        return found

    def _fetch_payment(self, *, payment: Payment, np_payment_id: str) -> Report:
        if not np_payment_id.isdigit():
            raise GatewayError(f"NOWPayments payment id {np_payment_id[:40]!r} is not a number")
        data = self._call("GET", f"payment/{np_payment_id}")
        order_id = str(data.get("order_id") or "")
        invoice_id = str(data.get("invoice_id") or "")
        if order_id != str(payment.pk) or (payment.external_ref and invoice_id != payment.external_ref):
            # A genuine payment, but of another invoice: never credit it to this one.
            logger.error(
                "NOWPayments payment %s belongs to order %r / invoice %r, not payment %s",
                np_payment_id,
                order_id,
                invoice_id,
                payment.pk,
            )
            return Report(status=PaymentStatus.PENDING, note="NOWPayments payment of another invoice: check.")
        self._record_amounts(payment=payment, data=data)
        return self.report(payment=payment, data=data)

    def report(self, *, payment: Payment, data: Mapping[str, Any]) -> Report:
        """A payment as NOWPayments returns it, onto the panel's terms."""
        status_text = str(data.get("payment_status") or "")
        status = self.state(status_text)
        note = f"NOWPayments: {status_text}"
        if status != PaymentStatus.PAID:
            return Report(status=status, note=note)
        price_amount = _decimal(data.get("price_amount"))
        price_currency = str(data.get("price_currency") or "").upper()
        if price_amount != payment.total or price_currency != payment.currency:
            # Not what we invoiced: payment_notify sees the mismatch and leaves it to staff.
            return Report(status=status, amount=price_amount, currency=price_currency, note=note)
        pay_amount = _decimal(data.get("pay_amount"))
        actually_paid = _decimal(data.get("actually_paid"))
        if pay_amount is None or pay_amount <= 0 or actually_paid is None:
            return Report(status=PaymentStatus.PENDING, note=f"{note} without amounts: check.")
        # What arrived, in our currency at the rate quoted on the invoice; the customer's
        # share of it after the gateway fee (fee and deposit are paid in proportion).
        arrived = price_amount * actually_paid / pay_amount
        credit = (arrived * payment.amount / payment.total).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
        return Report(status=status, amount=price_amount, currency=price_currency, note=note, credit=credit)

    @staticmethod
    def _record_amounts(*, payment: Payment, data: Mapping[str, Any]) -> None:
        """What the invoice asked in the coin and what arrived, for the customer and staff."""
        fields: dict[str, Any] = {}
        pay_currency = str(data.get("pay_currency") or "").upper()[:16]
        if pay_currency:
            fields["pay_currency"] = pay_currency
        for field, key in (("pay_amount", "pay_amount"), ("paid_amount", "actually_paid")):
            value = _decimal(data.get(key))
            if value is not None and value >= 0:
                fields[field] = value.quantize(Decimal("1e-12"), rounding=ROUND_DOWN)
        if fields:
            type(payment).objects.filter(pk=payment.pk).update(**fields)
