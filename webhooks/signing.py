"""Standard Webhooks signatures (https://www.standardwebhooks.com/, the spec's document).

- The secret is `whsec_` + base64 of 32 random bytes; the HMAC key is those bytes.
- Three headers: `webhook-id` (the event's id, the same on every retry and replay),
  `webhook-timestamp` (seconds since the epoch, when this attempt is sent: receivers refuse
  old ones, so a retry is signed afresh) and `webhook-signature`: `v1,` + base64 of
  HMAC-SHA256 over `{id}.{timestamp}.{body}`. Several signatures are separated by spaces:
  while a rotated secret's overlap lasts, each delivery carries one per valid secret.

Framework-free (standard library only), so the receiver simulator signs and checks the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32


def secret_new() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one attempt, signed with every secret given (newest first)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_
        ),
    }


def verify(*, secret: str, headers_: dict[str, str], body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the timestamp within `tolerance` seconds and one `v1` signature
    equal, compared in constant time."""
    lower = {k.lower(): v for k, v in headers_.items()}
    try:
        msg_id = lower["webhook-id"]
        timestamp = int(lower["webhook-timestamp"])
        sent = lower["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in sent if candidate.startswith("v1,"))
