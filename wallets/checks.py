"""Start-up checks of the wallet settings: a bad value fails `manage.py check` with a clear message."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from . import conf


@register()
def wallet_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    # Limits and the affiliate percentage are edited in the admin, checked by their models.
    errors: list[Error] = []
    if bool(conf.stripe_secret_key()) != bool(conf.stripe_webhook_secret()):
        errors.append(
            Error(
                "Set both STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET, or neither (card payments off).",
                id="wallets.E004",
            )
        )
    return errors
