"""Deployment checks of the panel's own settings (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def panel_base_url_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    parts = urlsplit(settings.PANEL_BASE_URL)
    if parts.scheme == "https" and parts.hostname not in {"127.0.0.1", "localhost"}:
        return []
    return [
        Warning(
            f"PANEL_BASE_URL is {settings.PANEL_BASE_URL!r}: password reset and other e-mailed links would "
            "point there. Set it to the panel's public https:// address.",
            id="smmpanel.W001",
        )
    ]
