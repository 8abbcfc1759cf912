"""Start-up checks of the wallet settings: a bad value fails `manage.py check` with a clear message."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.checks import Error, register

from . import conf


@register()
def wallet_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    try:
        limits = {"WALLET_MANUAL": conf.manual_limits(), "WALLET_STRIPE": conf.stripe_limits()}
        percent = conf.affiliate_percent()
    except (InvalidOperation, ValueError) as exc:
        return [Error(f"A wallet setting is not a number: {exc}", id="wallets.E001")]
    for prefix, (minimum, maximum) in limits.items():
        if not (Decimal("0") < minimum <= maximum):
            errors.append(Error(f"{prefix}_MIN must be positive and at most {prefix}_MAX.", id="wallets.E002"))
    if not (Decimal("0") <= percent <= Decimal("100")):
        errors.append(Error("WALLET_AFFILIATE_PERCENT must be between 0 and 100.", id="wallets.E003"))
    if bool(conf.stripe_secret_key()) != bool(conf.stripe_webhook_secret()):
        errors.append(
            Error(
                "Set both STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or neither (card payments off).",
                id="wallets.E004",
            )
        )
    return errors
