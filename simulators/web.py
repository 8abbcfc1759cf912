"""What every simulator's HTTP handler shares: quiet logs, reading a body, answering with
JSON, text or bytes, redirecting. Standard library only, like the simulators."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class SimulatorHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests and `make run` read the simulators' state, not their access logs

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: Any = None, *, content_type: str = "application/json") -> None:
        """Answer `payload`: bytes and text as they are, anything else as JSON."""
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
