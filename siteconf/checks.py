"""A note at start-up when the environment still sets what now lives in the admin."""

from __future__ import annotations

import os
from typing import Any

from django.core.checks import CheckMessage, Info, register

# Read once, by the first migrate, as the panel configuration's starting values.
MOVED_TO_THE_ADMIN = (
    "PANEL_NAME",
    "PANEL_CURRENCY",
    "WALLET_AFFILIATE_PERCENT",
    "WALLET_MANUAL_INSTRUCTIONS",
    "WALLET_MANUAL_ENABLED",
    "ACCOUNT_EMAIL_VERIFICATION",
    *(
        f"WALLET_{code}_{end}"
        for code in ("MANUAL", "STRIPE", "PAYPAL", "NOWPAYMENTS", "BTCPAY")
        for end in ("MIN", "MAX")
    ),
)


@register()
def moved_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    present = [name for name in MOVED_TO_THE_ADMIN if name in os.environ]
    if not present:
        return []
    return [
        Info(
            "These environment variables no longer configure the panel: "
            f"{', '.join(present)}. Their settings are edited in the admin (Panel configuration, "
            "Gateway settings); the first migrate read them as starting values.",
            id="siteconf.I001",
        )
    ]
