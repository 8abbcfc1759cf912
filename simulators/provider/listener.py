"""Listening, stopping, refusing connections and listening again on the same port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Self, cast

from simulators.provider.http import ProviderServer
from simulators.provider.state import ControlError, ProviderState

if TYPE_CHECKING:
    from simulators.provider.simulator import Simulator


class Listener(ProviderState):
    """The listening socket and its server thread; the open connections, to cut them."""

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        with self._server_lock:
            if self._server is not None or self._refusing:
                raise RuntimeError("the simulator is already running")
            self._stopping.clear()
            self.host = host
            self._listen(port)
        if self._fault is not None and self._fault.mode == "refuse":
            self._fault = None
            self.refuse(seconds=10)
        return self

    def _listen(self, port: int) -> None:
        last_error: OSError | None = None
        for _ in range(20):
            try:
                server = ProviderServer((self.host, port), cast("Simulator", self))
                break
            except OSError as exc:  # the port may linger for a moment after refuse
                last_error = exc
                time.sleep(0.05)
        else:
            raise last_error or OSError("cannot listen")
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"provider-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def stop(self) -> None:
        self._stopping.set()
        with self._server_lock:
            if self._recover_timer is not None:
                self._recover_timer.cancel()
                self._recover_timer = None
            self._refusing = False
            self._close_listener()
        self._cut_connections()

    def __enter__(self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/v2"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/control"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _cut_connections(self, spare: socket.socket | None = None) -> None:
        with self._conns_lock:
            conns = [c for c in self._conns if c is not spare]
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def refuse(self, seconds: float | None = None, *, _spare: socket.socket | None = None) -> None:
        """Stop listening (connections are refused) until recover(), or for `seconds`."""
        with self._server_lock:
            if self._recover_timer is not None:
                self._recover_timer.cancel()
                self._recover_timer = None
            if not self._refusing:
                if self._server is None:
                    raise ControlError("the simulator is not running")
                self._refusing = True
                self._close_listener()
            if seconds is not None:
                self._recover_timer = threading.Timer(float(seconds), self.recover)
                self._recover_timer.daemon = True
                self._recover_timer.start()
        self._cut_connections(spare=_spare)

    def recover(self) -> None:
        with self._server_lock:
            if self._recover_timer is not None and self._recover_timer is not threading.current_thread():
                self._recover_timer.cancel()
            self._recover_timer = None
            if not self._refusing or self._stopping.is_set():
                return
            self._listen(self.port)
            self._refusing = False
