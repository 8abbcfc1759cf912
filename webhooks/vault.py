"""Signing secrets at rest: Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`), keyed
by HKDF from SECRET_KEY and then SECRET_KEY_FALLBACKS, so a rotated SECRET_KEY (old value moved
to the fallbacks) still opens every stored secret. `WEBHOOKS_SECRET_KEY` overrides SECRET_KEY
as the source when set, so the two can be rotated apart."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet(source: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"smmpanel-webhooks", info=b"endpoint-secret").derive(
        source.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _vault() -> MultiFernet:
    sources = [settings.WEBHOOKS_SECRET_KEY] if settings.WEBHOOKS_SECRET_KEY else []
    sources += [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(source) for source in sources])


def seal(secret: str) -> str:
    return _vault().encrypt(secret.encode()).decode()


def unseal(token: str) -> str:
    return _vault().decrypt(token.encode()).decode()
