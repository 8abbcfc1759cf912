from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import ApiKey, User

KEY_PREFIX_LEN = 8


def _pepper() -> bytes:
    return (settings.API_KEY_PEPPER or f"api-key:{settings.SECRET_KEY}").encode()


def api_key_digest(*, raw_key: str) -> str:
    # A 256-bit random secret needs no slow password hash: a keyed SHA-256 is enough and
    # keeps each API request's key check to microseconds.
    return hmac.new(_pepper(), raw_key.encode(), hashlib.sha256).hexdigest()


@transaction.atomic
def api_key_issue(*, user: User) -> str:
    """Create or replace the user's key; returns the full key, which is never stored."""
    raw_key = secrets.token_hex(32)
    ApiKey.objects.update_or_create(
        user=user,
        defaults={
            "prefix": raw_key[:KEY_PREFIX_LEN],
            "digest": api_key_digest(raw_key=raw_key),
            "last_used_at": None,
            "revoked_at": None,
            "revoked_reason": "",
        },
    )
    return raw_key


def api_key_revoke(*, user: User) -> None:
    ApiKey.objects.filter(user=user).delete()


def api_key_revoke_for_password_change(*, user: User) -> bool:
    """Stop the user's key when their password changes (a reset after a leak must lock the
    thief out of the API too); the key stays, marked, so the API page tells them why."""
    return bool(
        ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=ApiKey.RevokedReason.PASSWORD_CHANGED
        )
    )


def api_key_touch(*, api_key: ApiKey, every_seconds: int = 300) -> None:
    """Record use, at most once per interval so busy keys do not write on every request."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() >= every_seconds:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


class BlockError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def user_block(*, user_id: int, actor: User, reason: str) -> User:
    """Stop a customer: no log-in, no session, no API (inactive users pass neither Django's
    authentication nor the API key lookup). Staff accounts are not blocked this way."""
    if not reason.strip():
        raise BlockError("Say why the customer is blocked.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if user.is_staff or user.is_superuser:
            raise BlockError(f"{user.get_username()} is staff: take away their staff status instead.")
        if user.pk == actor.pk:
            raise BlockError("You cannot block yourself.")
        user.is_active = False
        user.blocked_at = timezone.now()
        user.blocked_reason = f"{reason.strip()} (by {actor.get_username()})"[:255]
        user.save(update_fields=["is_active", "blocked_at", "blocked_reason"])
    return user


def user_unblock(*, user_id: int, actor: User) -> User:
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        user.is_active = True
        user.blocked_at = None
        user.blocked_reason = ""
        user.save(update_fields=["is_active", "blocked_at", "blocked_reason"])
    return user
