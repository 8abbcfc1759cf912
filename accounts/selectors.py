from __future__ import annotations

from kernel.db import first_or_none

from .models import ApiKey, User
from .services import api_key_digest


def api_key_get_by_raw(*, raw_key: str) -> ApiKey | None:
    """The active key (with its user) for a raw key as sent; one indexed query."""
    if not raw_key or len(raw_key) > 200:
        return None
    return first_or_none(
        ApiKey.objects.select_related("user").filter(
            digest=api_key_digest(raw_key=raw_key), revoked_at__isnull=True, user__is_active=True
        )
    )


def user_get_by_api_key(*, raw_key: str) -> User | None:
    found = api_key_get_by_raw(raw_key=raw_key)
    return found.user if found else None
