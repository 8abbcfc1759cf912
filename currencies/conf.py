"""Rate settings with their defaults, read in one place (see smmpanel/settings.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings

from siteconf.selectors import site_settings


def base_currency() -> str:
    """The panel's currency (the Owner's setting in the admin): rates are quoted against it."""
    return site_settings().base_currency.upper()


def rates_url() -> str:
    return str(getattr(settings, "CURRENCY_RATES_URL", ""))


def rates_api_key() -> str:
    return str(getattr(settings, "CURRENCY_RATES_API_KEY", ""))


def rates_api_key_param() -> str:
    return str(getattr(settings, "CURRENCY_RATES_API_KEY_PARAM", "app_id"))


def allow_private_url() -> bool:
    return bool(getattr(settings, "CURRENCY_RATES_ALLOW_PRIVATE_URL", False))


def timeouts() -> tuple[float, float]:
    return float(getattr(settings, "CURRENCY_RATES_CONNECT_TIMEOUT", 5)), float(
        getattr(settings, "CURRENCY_RATES_READ_TIMEOUT", 15)
    )


def max_jump_percent() -> Decimal:
    return Decimal(str(getattr(settings, "CURRENCY_RATES_MAX_JUMP_PERCENT", "20")))


def stale_after() -> timedelta:
    return timedelta(hours=float(getattr(settings, "CURRENCY_RATES_STALE_HOURS", 48)))
