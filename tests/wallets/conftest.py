from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from django.test import Client

STRIPE_WEBHOOK_SECRET = "whsec_test_secret_for_the_suite"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    # The personas get real passwords; the production hasher costs a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _demo_gateways_off(settings):  # type: ignore[no-untyped-def]
    # While debugging, NOWPayments defaults to its local simulator's demo keys (for `make
    # run`); here each test turns on the gateways it needs.
    settings.NOWPAYMENTS_API_KEY = ""
    settings.NOWPAYMENTS_IPN_SECRET = ""


@pytest.fixture
def stripe_on(settings):  # type: ignore[no-untyped-def]
    settings.STRIPE_SECRET_KEY = "sk_test_suite"
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
    return settings


@pytest.fixture
def manual_on(settings):  # type: ignore[no-untyped-def]
    return settings


@pytest.fixture
def customer_client(customer) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def staff_client(staff) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff)
    return client


def stripe_signature(payload: str, secret: str = STRIPE_WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed the way Stripe does: HMAC-SHA256 of "<t>.<body>"."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def checkout_event(
    *,
    session_id: str,
    payment_id: int,
    amount_minor: int,
    event_type: str = "checkout.session.completed",
    payment_status: str = "paid",
    event_id: str = "evt_test_1",
    currency: str = "usd",
) -> str:
    body: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "2025-01-01",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "amount_total": amount_minor,
                "currency": currency,
                "client_reference_id": str(payment_id),
                "metadata": {"payment_id": str(payment_id)},
                "payment_status": payment_status,
                "status": "complete",
            }
        },
    }
    return json.dumps(body)
