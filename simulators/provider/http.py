"""The HTTP side: one threaded server, API v2 requests with their faults, the control endpoint."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from simulators.provider.state import (
    AFTER_MODES,
    API_PATHS,
    CONTROL_PATHS,
    ERR_TOO_MANY_REQUESTS,
    HTML_502,
    HTML_CHALLENGE,
    ControlError,
)
from simulators.provider.wire import command_list, dumps, parse_int, parse_params

if TYPE_CHECKING:
    from simulators.provider.simulator import Simulator


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ProviderHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up mid-reply (the fault tests do it on purpose) are not news.
        if self.sim.verbose:
            super().handle_error(request, client_address)


class ProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SMMProviderSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 30  # idle keep-alive connections end

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> Simulator:
        return cast(ProviderServer, self.server).sim

    def setup(self) -> None:
        super().setup()
        self.sim._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.sim._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.sim.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is not None:
            self._dispatch(body)

    def _read_body(self) -> bytes | None:
        limit = self.sim.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self._send(400, b'{"error":"Bad chunked body"}', close=True)
                    return None
                if size <= 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self._too_large()
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = parse_int(self.headers.get("Content-Length", "0") or "0")
        if length is None or length < 0:
            self._send(400, b'{"error":"Bad Content-Length"}', close=True)
            return None
        if length > limit:
            self._too_large()
            return None
        return self.rfile.read(length) if length else b""

    def _too_large(self) -> None:
        self._send(413, b'{"error":"Request body too large"}', close=True)

    def _send(
        self,
        code: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, body: bytes) -> None:
        split = urlsplit(self.path)
        if split.path in API_PATHS:
            self._api(split.query, body)
        elif split.path in CONTROL_PATHS:
            self._control(body)
        else:
            self._send(404, b'{"error":"Not found"}')

    def _api(self, query: str, body: bytes) -> None:
        sim = self.sim
        params = parse_params(query, body, self.headers.get("Content-Type", ""))
        action = params.get("action", "").strip().lower()
        fault = sim._admit(action)
        delay_ms = sim.latency_ms + (fault.latency_ms if fault is not None and fault.mode == "latency" else 0)
        if delay_ms > 0:
            sim._stopping.wait(delay_ms / 1000)
        if fault is not None and fault.mode == "http429":
            retry = (("Retry-After", str(fault.retry_after)),)
            self._send(429, dumps({"error": ERR_TOO_MANY_REQUESTS}), headers=retry)
            return
        if fault is not None and fault.mode == "error":
            self._send(200, dumps({"error": fault.text}))
            return
        reply = sim.handle_api(params)
        if fault is None or fault.mode not in AFTER_MODES:
            self._send(200, reply)
        elif fault.mode == "http502_html":
            self._send(502, HTML_502, content_type="text/html", close=True)
        elif fault.mode == "http200_html":
            self._send(200, HTML_CHALLENGE, content_type="text/html; charset=UTF-8")
        elif fault.mode == "truncated_json":
            self._send(200, reply[: max(1, len(reply) // 2)])
        elif fault.mode == "empty_object":
            self._send(200, b"{}")
        elif fault.mode == "close":
            self._drop()
        else:  # hang_after_add
            self._hang(fault.hang_seconds)
            self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hang(self, seconds: float) -> None:
        """Say nothing until the client hangs up, `seconds` pass or the simulator stops."""
        deadline = time.monotonic() + seconds
        stopping = self.sim._stopping
        while not stopping.is_set() and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.1)
                if readable:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end
                    stopping.wait(0.1)
            except (OSError, ValueError):
                return

    def _control(self, body: bytes) -> None:
        sim = self.sim
        if self.command == "GET":
            self._send(200, dumps(sim.summary()))
            return
        try:
            commands = command_list(json.loads(body or b"{}"))
        except (ValueError, ControlError) as exc:
            self._send(400, dumps({"error": f"bad control body: {exc}"}))
            return
        results: list[Any] = []
        refuse_for: float | None = None
        try:
            for command in commands:
                if command.get("cmd") == "refuse" or (
                    command.get("cmd") == "set_fault" and command.get("mode") == "refuse"
                ):
                    # The listener goes away: answer first, and always come back on a timer.
                    refuse_for = float(command.get("seconds") or 5)
                    results.append({"refusing_for": refuse_for})
                    continue
                results.append(sim.run_command(command))
        except ControlError as exc:
            self._send(400, dumps({"error": str(exc), "results": results}))
            return
        self._send(200, dumps({"ok": True, "results": results}), close=refuse_for is not None)
        if refuse_for is not None:
            sim.refuse(seconds=refuse_for, _spare=self.connection)
