from __future__ import annotations

from kernel.db import fetch_joined

from .models import ApiKey, User
from .services import api_key_digest


def api_key_get_by_raw(*, raw_key: str) -> ApiKey | None:
    """The active key (with its user) for a raw key as sent; one indexed query, written out
    (kernel.db.fetch_joined): every API request makes it."""
    if not raw_key or len(raw_key) > 200:
        return None
    rows = fetch_joined(
        [(ApiKey, "k"), (User, "u")],
        "FROM accounts_apikey k JOIN accounts_user u ON u.id = k.user_id "
        "WHERE k.digest = %s AND k.revoked_at IS NULL AND u.is_active = %s LIMIT 1",
        [api_key_digest(raw_key=raw_key), True],
    )
    if not rows:
        return None
    key, user = rows[0]
    assert isinstance(key, ApiKey) and isinstance(user, User)
    key.user = user
    return key


def user_get_by_api_key(*, raw_key: str) -> User | None:
    found = api_key_get_by_raw(raw_key=raw_key)
    return found.user if found else None
