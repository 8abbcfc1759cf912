"""One webhook POST: through the outbound-address guard, with connect and read timeouts, a
deadline for the whole answer, a cap on how much of it is read, and no redirects followed.

Framework-free; it never touches the ORM. 2xx means delivered; anything else is a failure
the caller retries (a 410 Gone too: the receiver may come back, and the log shows it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests

from kernel.outbound import AddressRefusedError, GuardedAdapter

USER_AGENT = "smmpanel-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    duration_ms: int
    error: str

    @property
    def delivered(self) -> bool:
        # The status line decides: a 2xx whose answer was cut (too long, too slow) still arrived.
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    allow_private: bool,
    connect_timeout: float,
    read_timeout: float,
    max_response_bytes: int,
) -> Attempt:
    started = time.monotonic()
    deadline = started + connect_timeout + read_timeout

    def done(status: int | None, error: str) -> Attempt:
        return Attempt(status_code=status, duration_ms=int((time.monotonic() - started) * 1000), error=error[:500])

    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the guard checks the receiver itself
    adapter = GuardedAdapter(allow_private=allow_private, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    try:
        response = session.post(
            url,
            data=body,
            headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout=(connect_timeout, read_timeout),
            allow_redirects=False,
            stream=True,
        )
        try:
            read = 0
            for chunk in response.iter_content(chunk_size=8192):
                read += len(chunk)
                if read > max_response_bytes:
                    return done(response.status_code, f"answer larger than {max_response_bytes} bytes")
                if time.monotonic() > deadline:
                    return done(response.status_code, "answer took too long")
        finally:
            response.close()
        if 300 <= response.status_code < 400:
            return done(response.status_code, "redirect not followed")
        return done(response.status_code, "")
    except requests.ConnectionError as exc:
        refusal = _refusal(exc)
        return done(None, refusal or f"connection failed: {type(exc).__name__}")
    except requests.Timeout:
        return done(None, "timed out")
    except requests.RequestException as exc:
        return done(None, f"request failed: {type(exc).__name__}")
    finally:
        session.close()


def _refusal(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException) and not isinstance(arg, str):
                found = _refusal_in(arg)
                if found:
                    return found
        found = _refusal_in(seen)
        if found:
            return found
        seen = seen.__cause__ or seen.__context__
    return ""


def _refusal_in(exc: BaseException) -> str:
    if isinstance(exc, AddressRefusedError):
        return f"refused by the outbound address guard: {exc.refusal}"
    reason = getattr(exc, "reason", None)
    if isinstance(reason, AddressRefusedError):
        return f"refused by the outbound address guard: {reason.refusal}"
    return ""
