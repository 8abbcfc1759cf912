"""Keeps name lookups inside the machine while tests run (loaded with `-p` from pyproject.toml).

pytest-socket's `--allow-hosts` checks only `connect()`: a test resolving a public name would
still send a DNS query before its connection is refused, and where no resolver answers it would
fail with a resolver error instead of pytest-socket's. Here a lookup of any name outside
`--allow-hosts` raises pytest-socket's SocketBlockedError; address literals resolve as before,
and `connect()` decides about them. Tests marked `enable_socket` are left alone.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Generator
from typing import Any

import pytest
from pytest_socket import SocketBlockedError

_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname


def _name(host: Any) -> str | None:
    """The host as text, or None when resolving it needs no lookup (no host, an address)."""
    if host is None:
        return None
    text = host.decode("ascii", "replace") if isinstance(host, bytes | bytearray) else str(host)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])  # "fe80::1%eth0" is an address too
    except ValueError:
        return text.rstrip(".").lower()
    return None


def _guard(allowed: frozenset[str]) -> tuple[Any, Any]:
    def check(host: Any) -> None:
        name = _name(host)
        if name is not None and name not in allowed:
            raise SocketBlockedError(
                f'A test tried to resolve "{name}" (allowed: "{",".join(sorted(allowed))}"); '
                "tests reach only this machine."
            )

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host)
        return _real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: Any) -> str:
        check(host)
        return _real_gethostbyname(host)

    return getaddrinfo, gethostbyname


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    hosts = item.config.getoption("--allow-hosts", default=None)
    enabled = item.get_closest_marker("enable_socket") or "socket_enabled" in getattr(item, "fixturenames", ())
    if not hosts or enabled or item.config.getoption("--force-enable-socket"):
        return (yield)
    allowed = frozenset(host.strip().rstrip(".").lower() for host in hosts.split(",") if host.strip())
    socket.getaddrinfo, socket.gethostbyname = _guard(allowed)
    try:
        return (yield)
    finally:
        # After the fixtures' teardown, so a monkeypatched resolver cannot put the guard back.
        socket.getaddrinfo, socket.gethostbyname = _real_getaddrinfo, _real_gethostbyname
