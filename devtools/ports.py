"""Loopback ports: one nothing listens on, and waiting until something does."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A loopback TCP port nothing listens on (the OS picks it; it is released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def wait_port(
    port: int, timeout: float, *, host: str = "127.0.0.1", alive: Callable[[], bool] | None = None, what: str = ""
) -> None:
    """Return once `port` accepts connections; fail early when `alive()` says the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{what or 'the server'} exited before listening on port {port}")
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s ({what or 'a server'})")
