"""Wallet settings, read in one place: secrets and addresses from the environment (the end
of smmpanel/settings.py), the business's choices from the panel configuration (siteconf).

Each gateway's deposit limits below are its defaults in code; staff set the real ones per
gateway in the admin (GatewaySetting), where the old WALLET_*_MIN/MAX values were copied.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from siteconf.selectors import site_settings


def manual_enabled() -> bool:
    return True


def manual_instructions() -> str:
    return site_settings().manual_instructions


def manual_bank_details() -> str:
    return site_settings().bank_details


def manual_limits() -> tuple[Decimal, Decimal]:
    return Decimal("1"), Decimal("10000")


def stripe_secret_key() -> str:
    return str(getattr(settings, "STRIPE_SECRET_KEY", ""))


def stripe_webhook_secret() -> str:
    return str(getattr(settings, "STRIPE_WEBHOOK_SECRET", ""))


def stripe_limits() -> tuple[Decimal, Decimal]:
    return Decimal("5"), Decimal("5000")


def btcpay_url() -> str:
    return str(getattr(settings, "BTCPAY_URL", "")).rstrip("/")


def btcpay_store_id() -> str:
    return str(getattr(settings, "BTCPAY_STORE_ID", ""))


def btcpay_api_key() -> str:
    return str(getattr(settings, "BTCPAY_API_KEY", ""))


def btcpay_webhook_secret() -> str:
    return str(getattr(settings, "BTCPAY_WEBHOOK_SECRET", ""))


def btcpay_allow_private_url() -> bool:
    return bool(getattr(settings, "BTCPAY_ALLOW_PRIVATE_URL", False))


def btcpay_timeout() -> float:
    return float(getattr(settings, "BTCPAY_TIMEOUT_SECONDS", 15))


def btcpay_limits() -> tuple[Decimal, Decimal]:
    return Decimal("5"), Decimal("10000")


def nowpayments_api_url() -> str:
    return str(getattr(settings, "NOWPAYMENTS_API_URL", "https://api.nowpayments.io/v1"))


def nowpayments_api_key() -> str:
    return str(getattr(settings, "NOWPAYMENTS_API_KEY", ""))


def nowpayments_ipn_secret() -> str:
    return str(getattr(settings, "NOWPAYMENTS_IPN_SECRET", ""))


def nowpayments_email() -> str:
    return str(getattr(settings, "NOWPAYMENTS_EMAIL", ""))


def nowpayments_password() -> str:
    return str(getattr(settings, "NOWPAYMENTS_PASSWORD", ""))


def nowpayments_limits() -> tuple[Decimal, Decimal]:
    return Decimal("5"), Decimal("5000")


def nowpayments_allow_private() -> bool:
    # The local simulator listens on loopback: allowed where provider URLs on it are.
    return bool(getattr(settings, "PROVIDERS_ALLOW_PRIVATE_URLS", False))


def affiliate_percent() -> Decimal:
    return site_settings().affiliate_percent


def currency() -> str:
    return site_settings().base_currency


def paypal_api_url() -> str:
    return str(getattr(settings, "PAYPAL_API_URL", "https://api-m.sandbox.paypal.com"))


def paypal_client_id() -> str:
    return str(getattr(settings, "PAYPAL_CLIENT_ID", ""))


def paypal_client_secret() -> str:
    return str(getattr(settings, "PAYPAL_CLIENT_SECRET", ""))


def paypal_webhook_id() -> str:
    return str(getattr(settings, "PAYPAL_WEBHOOK_ID", ""))


def paypal_allow_private_urls() -> bool:
    return bool(getattr(settings, "PAYPAL_ALLOW_PRIVATE_URLS", False))


def paypal_limits() -> tuple[Decimal, Decimal]:
    return Decimal("5"), Decimal("5000")


def paypal_currency() -> str:
    """The currency PayPal is paid in; empty: the panel's (PAYPAL_CURRENCY)."""
    return str(getattr(settings, "PAYPAL_CURRENCY", "") or "").upper()
