from __future__ import annotations

from .models import ApiKey, User
from .services import api_key_digest


def user_get_by_api_key(*, raw_key: str) -> User | None:
    if not raw_key or len(raw_key) > 200:
        return None
    found = (
        ApiKey.objects.select_related("user")
        .filter(digest=api_key_digest(raw_key=raw_key), user__is_active=True)
        .first()
    )
    return found.user if found else None
