"""Network helpers for tests and benchmarks that start their own servers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on (the OS picks it; it is released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
