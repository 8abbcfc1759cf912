"""Stripe Checkout: a hosted page per payment, confirmed by signed webhook events.

The event is trusted as sent (Stripe signs it with the webhook secret and `construct_event`
checks the signature and its age), so a notification needs no read back; `fetch` reads a
Checkout Session for reconciliation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from stripe.params.checkout import SessionCreateParams

from kernel.numbers import int_or_none

from .. import conf
from ..states import PaymentStatus
from .base import Checkout, Gateway, GatewayError, GatewayRefusal, Kind, Notification, Report, SignatureError

if TYPE_CHECKING:
    from ..models import Payment

# Currencies Stripe counts in whole units (no cents). https://docs.stripe.com/currencies
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_TIMEOUT_SECONDS = 20
PAID_EVENTS = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
FAILED_EVENTS = frozenset({"checkout.session.expired", "checkout.session.async_payment_failed"})
# Money coming back names the PaymentIntent (stored as the payment's charge_ref), not the
# session. charge.refunded carries a Charge whose amount_refunded is the running total;
# the dispute events carry a Dispute: created (or funds_withdrawn) withdraws its amount,
# keyed by the dispute so both take it once, except an inquiry (a warning_* status), which
# withdraws nothing; a won dispute (closed with status won, or funds_reinstated) gives it
# back, a lost one changes nothing more.
REFUND_EVENTS = frozenset({"charge.refunded"})
WITHDRAWN_EVENTS = frozenset({"charge.dispute.created", "charge.dispute.funds_withdrawn"})
DISPUTE_EVENTS = WITHDRAWN_EVENTS | {"charge.dispute.closed", "charge.dispute.funds_reinstated"}
LIST_PAGE_SIZE = 100


def _exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2


def minor_units(*, amount: Decimal, currency: str) -> int | None:
    """The amount in the currency's smallest unit, or None when it does not divide evenly."""
    scaled = amount.scaleb(_exponent(currency))
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


class StripeGateway(Gateway):
    code = "stripe"
    label = _("Card (Stripe)")
    kind = Kind.HOSTED
    button_label = _("Pay by card")
    sort_order = 10
    # A session's payment_status; an expired session is failed whatever it says.
    STATES = {
        "paid": PaymentStatus.PAID,
        "no_payment_required": PaymentStatus.PAID,
        "unpaid": PaymentStatus.PENDING,
    }

    def configured(self) -> bool:
        # Without the webhook secret nothing could ever confirm a payment: keep it off.
        return bool(conf.stripe_secret_key() and conf.stripe_webhook_secret())

    def default_limits(self) -> tuple[Decimal, Decimal]:
        return conf.stripe_limits()

    def checkout_origins(self) -> tuple[str, ...]:
        return ("https://checkout.stripe.com",)

    def check(self, *, amount: Decimal, currency: str, data: Mapping[str, Any]) -> None:
        if minor_units(amount=amount, currency=currency) is None:
            raise GatewayRefusal(gettext("Card payments in %(currency)s take whole cents.") % {"currency": currency})

    def _client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            conf.stripe_secret_key(),
            http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
            max_network_retries=2,
        )

    def start(self, *, payment: Payment, data: Mapping[str, Any], return_url: str) -> Checkout:
        """Create the Checkout Session. A network call: never call it inside a transaction."""
        amount_minor = minor_units(amount=payment.total, currency=payment.currency)
        if amount_minor is None:
            raise GatewayError(f"payment {payment.pk}: {payment.total} is not whole {payment.currency} cents")
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": payment.currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": f"Balance top-up #{payment.pk}"},
                    },
                }
            ],
            "client_reference_id": str(payment.pk),
            "metadata": {"payment_id": str(payment.pk)},
            "success_url": f"{return_url}?checkout=success",
            "cancel_url": f"{return_url}?checkout=cancel",
        }
        if payment.user.email:
            params["customer_email"] = payment.user.email
        try:
            session = self._client().v1.checkout.sessions.create(
                params=params,
                # The same payment never opens two sessions, even when this call is retried.
                options={"idempotency_key": f"payment:{payment.pk}:checkout"},
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refused the checkout session: {exc}") from exc
        if not session.id or not session.url:
            raise GatewayError("Stripe returned a checkout session without id or url")
        return Checkout(redirect_url=session.url, reference=session.id)

    def verify_notification(self, request: HttpRequest) -> Notification:
        """Verify the Stripe-Signature header and read the event."""
        secret = conf.stripe_webhook_secret()
        if not secret:
            raise SignatureError("no webhook secret configured")
        payload = request.body
        try:
            stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""), secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise SignatureError(str(exc)) from exc
        event = json.loads(payload)
        if not isinstance(event, dict):
            raise SignatureError("the event is not a JSON object")
        return self.read_event(event)

    def read_event(self, event: Mapping[str, Any]) -> Notification:
        """A verified event as a notification; events not about a Checkout Session carry no report."""
        event_type = str(event.get("type") or "")
        session = (event.get("data") or {}).get("object") or {}
        raw = dict(event)
        event_id = str(event.get("id") or "")
        if event_type in REFUND_EVENTS | DISPUTE_EVENTS and isinstance(session, Mapping):
            return self._money_back(event_type=event_type, event_id=event_id, obj=session, raw=raw)
        if event_type not in PAID_EVENTS | FAILED_EVENTS or not isinstance(session, Mapping):
            return Notification(event_id=event_id, reference="", raw=raw)
        if event_type in FAILED_EVENTS:
            report = Report(status=PaymentStatus.FAILED, note=f"Stripe: {event_type}")
        else:
            # Delayed methods complete the session unpaid; async_payment_succeeded follows.
            report = self._report(session, status=self.state(str(session.get("payment_status") or "")))
        return Notification(
            event_id=event_id,
            reference=str(session.get("id") or ""),
            # Our payment id comes back as client_reference_id: it finds a payment whose
            # session id was never stored (a crash between creating the session and saving).
            payment_id=int_or_none(session.get("client_reference_id")),
            report=report,
            raw=raw,
        )

    def _money_back(
        self, *, event_type: str, event_id: str, obj: Mapping[str, Any], raw: dict[str, Any]
    ) -> Notification:
        currency = str(obj.get("currency") or "").upper()
        intent = obj.get("payment_intent")
        intent_id = str((intent.get("id") if isinstance(intent, Mapping) else intent) or "")
        obj_id = str(obj.get("id") or "")
        report: Report | None = None
        if event_type == "charge.refunded":
            report = Report(
                status=PaymentStatus.PARTLY_REFUNDED,
                amount=_major(obj.get("amount_refunded"), currency),
                currency=currency,
                note="Stripe: refunded",
                reversal="reversal",
                # The running total keys the entry: a replay of it moves nothing.
                reference=f"{obj_id}:{obj.get('amount_refunded')}",
                cumulative=True,
            )
        elif event_type in WITHDRAWN_EVENTS and not str(obj.get("status") or "").startswith("warning_"):
            reason = str(obj.get("reason") or "dispute")
            report = Report(
                status=PaymentStatus.PARTLY_REFUNDED,
                amount=_major(obj.get("amount"), currency),
                currency=currency,
                note=f"Stripe: disputed ({reason})",
                reversal="chargeback",
                reference=obj_id,
            )
        elif event_type == "charge.dispute.funds_reinstated" or (
            event_type == "charge.dispute.closed" and obj.get("status") == "won"
        ):
            report = Report(
                status=PaymentStatus.PAID,
                amount=_major(obj.get("amount"), currency),
                currency=currency,
                note="Stripe: dispute won, funds reinstated",
                reversal="reinstatement",
                reference=obj_id,
            )
        return Notification(event_id=event_id, reference=intent_id, report=report, raw=raw)

    def list_recent(self, *, since: datetime) -> Iterator[tuple[str, Report]]:
        """Checkout Sessions created since `since`, newest first, page by page."""
        params: dict[str, Any] = {
            "created": {"gte": int(since.timestamp())},
            "limit": LIST_PAGE_SIZE,
            # The charge says what was refunded since: a session stays "paid" after a refund.
            "expand": ["data.payment_intent.latest_charge"],
        }
        client = self._client()
        while True:
            try:
                page = client.v1.checkout.sessions.list(params=params)  # type: ignore[arg-type]
            except stripe.StripeError as exc:
                raise GatewayError(f"Stripe did not list the checkout sessions: {exc}") from exc
            sessions = [session.to_dict() for session in page.data]
            for data in sessions:
                yield str(data.get("id") or ""), self._session_report(data)
            if not page.has_more or not sessions:
                return
            params["starting_after"] = sessions[-1]["id"]

    def _session_report(self, data: Mapping[str, Any]) -> Report:
        intent = data.get("payment_intent")
        charge = intent.get("latest_charge") if isinstance(intent, Mapping) else None
        refunded = charge.get("amount_refunded") if isinstance(charge, Mapping) else None
        if isinstance(charge, Mapping) and isinstance(refunded, int) and refunded > 0:
            currency = str(charge.get("currency") or "").upper()
            return Report(
                status=PaymentStatus.PARTLY_REFUNDED,
                amount=_major(refunded, currency),
                currency=currency,
                note="Stripe: refunded",
                reversal="reversal",
                # The same key as the charge.refunded webhook's: whichever comes first moves it.
                reference=f"{charge.get('id')}:{refunded}",
                cumulative=True,
                charge_ref=str(intent.get("id") or "") if isinstance(intent, Mapping) else "",
            )
        if data.get("status") == "expired":
            return Report(status=PaymentStatus.FAILED, note="Stripe: the checkout session expired")
        return self._report(data, status=self.state(str(data.get("payment_status") or "")))

    def fetch(self, *, payment: Payment) -> Report:
        if not payment.external_ref:
            raise GatewayError(f"payment {payment.pk} has no checkout session")
        try:
            session = self._client().v1.checkout.sessions.retrieve(payment.external_ref)
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe did not return the checkout session: {exc}") from exc
        return self._session_report(session.to_dict())

    @staticmethod
    def _report(session: Mapping[str, Any], *, status: PaymentStatus) -> Report:
        currency = str(session.get("currency") or "").upper()
        total = session.get("amount_total")
        intent = session.get("payment_intent")
        intent_id = str((intent.get("id") if isinstance(intent, Mapping) else intent) or "")
        return Report(status=status, amount=_major(total, currency), currency=currency, charge_ref=intent_id)


def _major(minor: Any, currency: str) -> Decimal | None:
    """Stripe's integer amount in the currency's smallest unit, as a Decimal amount."""
    if isinstance(minor, int) and not isinstance(minor, bool):
        return Decimal(minor).scaleb(-_exponent(currency))
    return None
