"""The provider simulator run as a process, through its control endpoint (docs/simulator.md)."""

from __future__ import annotations

import sys
from typing import Any

import requests

DEFAULT_KEY = "demo-provider-key"


def simulator_argv(port: int, *options: str, module: str = "simulators.provider") -> list[str]:
    """The command line that runs a simulator (or a subclass's module) on `port`."""
    return [sys.executable, "-m", module, "--port", str(port), *options]


class SimulatorControl:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.base_url = f"http://{host}:{port}"
        self.api_url = f"{self.base_url}/api/v2"
        self.control_url = f"{self.base_url}/control"
        self.timeout = timeout

    def command(self, cmd: str, *, timeout: float | None = None, **arguments: Any) -> Any:
        """Run one control command; its result (HTTP 400, a refused command, raises)."""
        reply = requests.post(self.control_url, json={"cmd": cmd, **arguments}, timeout=timeout or self.timeout)
        reply.raise_for_status()
        return reply.json()["results"][0]

    def summary(self, timeout: float | None = None) -> dict[str, Any]:
        reply = requests.get(self.control_url, timeout=timeout or self.timeout)
        reply.raise_for_status()
        return dict(reply.json())

    def ready(self) -> bool:
        try:
            return requests.get(self.control_url, timeout=1).ok
        except requests.RequestException:
            return False

    def clear_fault(self) -> None:
        self.command("clear_fault")
