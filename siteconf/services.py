"""Changing the panel's settings: the one writer, with the cache and the history kept right."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext as _

from .models import SiteSettings
from .selectors import CACHE_KEY, site_settings_forget_local

# Accepted logo images: their first bytes, and the type they are served with. No SVG: it
# can carry script.
LOGO_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
LOGO_MAX_BYTES = 200 * 1024

# Apps that hold money register here whether any has moved (wallets: a ledger entry exists);
# the base currency cannot change after that.
_money_moved_checks: list[Callable[[], bool]] = []


class SiteSettingsError(Exception):
    """A change refused, with a message for the person who asked for it."""


def money_moved_register(check: Callable[[], bool]) -> None:
    if check not in _money_moved_checks:
        _money_moved_checks.append(check)


def money_has_moved() -> bool:
    return any(check() for check in _money_moved_checks)


def logo_type_of(data: bytes) -> str:
    """The image type of `data` read from its signature, or "" when it is none we serve."""
    for signature, content_type in LOGO_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def logo_check(data: bytes) -> str:
    if len(data) > LOGO_MAX_BYTES:
        raise SiteSettingsError(_("The logo is larger than %(size)d KB.") % {"size": LOGO_MAX_BYTES // 1024})
    content_type = logo_type_of(data)
    if not content_type:
        raise SiteSettingsError(_("The logo must be a PNG, JPEG, GIF or WebP image."))
    return content_type


def site_settings_invalidate() -> None:
    # Now (a later read in this transaction sees the change) and again after commit (another
    # process may have cached the old row meanwhile).
    cache.delete(CACHE_KEY)
    site_settings_forget_local()
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


def site_settings_save(*, row: SiteSettings, actor: Any, changed: list[str] | None = None) -> SiteSettings:
    """Save the edited row: refused when the base currency changes after money moved."""
    with transaction.atomic():
        stored = SiteSettings.objects.select_for_update().filter(pk=row.pk).first()
        if stored is not None and stored.base_currency != row.base_currency and money_has_moved():
            raise SiteSettingsError(
                _(
                    "The base currency cannot change from %(old)s to %(new)s: money has already moved "
                    "in %(old)s (the ledger has entries)."
                )
                % {"old": stored.base_currency, "new": row.base_currency}
            )
        row._history_user = actor if getattr(actor, "pk", None) else None  # type: ignore[attr-defined]
        row.save()
        site_settings_invalidate()
    return row


def site_settings_update(*, actor: Any, **changes: Any) -> SiteSettings:
    """Set some fields (by name) and save, as site_settings_save."""
    from .selectors import site_settings_row

    row = site_settings_row()
    for name, value in changes.items():
        if name in {"logo", "logo_type", "logo_version", "pk", "id"} or not hasattr(row, name):
            raise SiteSettingsError(f"No setting {name!r}.")
        setattr(row, name, value)
    row.full_clean()
    return site_settings_save(row=row, actor=actor)


def site_logo_set(*, row: SiteSettings, data: bytes) -> None:
    """Put an uploaded logo (checked) on the row, or remove it with empty bytes; saved by the caller."""
    if not data:
        row.logo, row.logo_type, row.logo_version = b"", "", ""
        return
    row.logo_type = logo_check(data)
    row.logo = data
    row.logo_version = hashlib.sha256(data).hexdigest()[:16]
