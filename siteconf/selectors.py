"""The panel's settings as every app reads them: a frozen snapshot, cached.

Read path: this thread's copy (forgotten when the next request or task starts), else the
shared cache (Redis in production, so every web and worker process sees a change at once),
else the database. A save deletes the cache entry after its transaction commits
(services.py), so no process can cache the old row again after the change is visible.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError

from .models import SINGLETON_PK, SiteSettings

CACHE_TIMEOUT = 3600
_local = threading.local()


@dataclass(frozen=True)
class SiteConf:
    panel_name: str
    logo_type: str
    logo_version: str
    support_email: str
    terms_url: str
    privacy_url: str
    base_currency: str
    affiliate_percent: Decimal
    manual_instructions: str
    bank_details: str
    signup_open: bool
    email_verification: str

    @property
    def has_logo(self) -> bool:
        return bool(self.logo_version)


_FIELDS = tuple(f.name for f in fields(SiteConf))
# A deploy that changes the snapshot's fields reads a new key instead of an old pickle.
CACHE_KEY = "siteconf:" + hashlib.sha256(",".join(_FIELDS).encode()).hexdigest()[:12]


def _snapshot(row: SiteSettings) -> SiteConf:
    values: dict[str, Any] = {name: getattr(row, name) for name in _FIELDS}
    return SiteConf(**values)


def site_settings_row() -> SiteSettings:
    """The row itself (created with the defaults when missing), for the admin and services."""
    row, _ = SiteSettings.objects.get_or_create(pk=SINGLETON_PK)
    return row


def _defaults() -> SiteConf:
    return _snapshot(SiteSettings(pk=SINGLETON_PK))


def site_settings() -> SiteConf:
    """The panel's settings now."""
    conf: SiteConf | None = getattr(_local, "conf", None)
    if conf is not None:
        return conf
    conf = cache.get(CACHE_KEY)
    if not isinstance(conf, SiteConf):
        try:
            conf = _snapshot(site_settings_row())
        except DatabaseError:
            # Before the first migrate (checks, collectstatic): the defaults, not cached.
            return _defaults()
        cache.set(CACHE_KEY, conf, CACHE_TIMEOUT)
    _local.conf = conf
    return conf


def site_settings_forget_local(**kwargs: object) -> None:
    _local.conf = None


def site_logo() -> tuple[bytes, str, str]:
    """(image bytes, content type, version) of the uploaded logo; empty bytes when none."""
    row = SiteSettings.objects.filter(pk=SINGLETON_PK).only("logo", "logo_type", "logo_version").first()
    if row is None or not row.logo:
        return b"", "", ""
    return bytes(row.logo), row.logo_type, row.logo_version
