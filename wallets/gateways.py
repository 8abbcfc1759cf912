"""Payment gateways: manual transfers reviewed by staff, and Stripe Checkout.

Two concrete classes and nothing dynamic. A gateway knows whether it is configured, its
deposit limits and how to talk to its provider; it never touches the ledger (that is
wallets.services, which calls these).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from . import conf

# Currencies Stripe counts in whole units (no cents). https://docs.stripe.com/currencies
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_TIMEOUT_SECONDS = 20


class GatewayError(Exception):
    """The gateway refused or could not be reached; the message is for logs and staff."""


class SignatureError(GatewayError):
    """A notification whose signature does not verify: it is not from the gateway."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class ManualGateway:
    code = "manual"
    label = "Manual transfer"

    @property
    def enabled(self) -> bool:
        return conf.manual_enabled()

    @property
    def limits(self) -> tuple[Decimal, Decimal]:
        return conf.manual_limits()

    @property
    def instructions(self) -> str:
        return conf.manual_instructions()


class StripeGateway:
    code = "stripe"
    label = "Card (Stripe)"

    @property
    def enabled(self) -> bool:
        # Without the webhook secret nothing could ever confirm a payment: keep it off.
        return bool(conf.stripe_secret_key() and conf.stripe_webhook_secret())

    @property
    def limits(self) -> tuple[Decimal, Decimal]:
        return conf.stripe_limits()

    @staticmethod
    def minor_units(*, amount: Decimal, currency: str) -> int | None:
        """The amount in the currency's smallest unit, or None when it does not divide evenly."""
        exponent = 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2
        scaled = amount.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            return None
        return int(scaled)

    def create_checkout_session(
        self, *, payment_id: int, amount_minor: int, currency: str, email: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """Create the Checkout Session. A network call: never call it inside a transaction."""
        client = stripe.StripeClient(
            conf.stripe_secret_key(),
            http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
            max_network_retries=2,
        )
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount_minor,
                        "product_data": {"name": f"Balance top-up #{payment_id}"},
                    },
                }
            ],
            "client_reference_id": str(payment_id),
            "metadata": {"payment_id": str(payment_id)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        if email:
            params["customer_email"] = email
        try:
            session = client.v1.checkout.sessions.create(
                params=params,
                # The same payment never opens two sessions, even when this call is retried.
                options={"idempotency_key": f"payment:{payment_id}:checkout"},
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refused the checkout session: {exc}") from exc
        if not session.id or not session.url:
            raise GatewayError("Stripe returned a checkout session without id or url")
        return CheckoutSession(id=session.id, url=session.url)

    def parse_webhook(self, *, payload: bytes, sig_header: str) -> dict[str, Any]:
        """Verify the Stripe-Signature header and return the event as plain JSON."""
        secret = conf.stripe_webhook_secret()
        if not secret:
            raise SignatureError("no webhook secret configured")
        try:
            stripe.Webhook.construct_event(payload, sig_header, secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise SignatureError(str(exc)) from exc
        event = json.loads(payload)
        if not isinstance(event, dict):
            raise SignatureError("the event is not a JSON object")
        return event


MANUAL = ManualGateway()
STRIPE = StripeGateway()
GATEWAYS: dict[str, ManualGateway | StripeGateway] = {MANUAL.code: MANUAL, STRIPE.code: STRIPE}


def gateway_list_enabled() -> list[ManualGateway | StripeGateway]:
    return [gateway for gateway in GATEWAYS.values() if gateway.enabled]
