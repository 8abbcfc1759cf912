"""A private RabbitMQ node for `make chaos --broker rabbitmq`: its own name, ports, data and
logs under the run's directory, so killing it leaves the machine's RabbitMQ alone.

Debian's `rabbitmq-server` drops to the `rabbitmq` user in a session of its own, so the node
is stopped by the operating-system pid it writes to its pid file, not by process group. Its
data directory outlives a kill: durable queues and persistent messages come back with it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def available() -> bool:
    return shutil.which("rabbitmq-server") is not None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RabbitNode:
    def __init__(self, *, port: int, dist_port: int, base: Path) -> None:
        self.port = port
        self.dist_port = dist_port
        self.base = base
        self.name = f"chaos{port}@localhost"
        self.launcher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        data = self.base / "data"
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(data),
            "RABBITMQ_MNESIA_DIR": str(data / "node"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(data / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(data / "plugins-expand"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "none"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
        }

    def start(self, timeout: float = 90.0) -> None:
        for sub in ("data", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "pid").unlink(missing_ok=True)
        if os.geteuid() == 0:
            # The server script runs the node as `rabbitmq`: it must write here.
            with contextlib.suppress(KeyError):
                account = pwd.getpwnam("rabbitmq")
                for path in [self.base, *self.base.rglob("*")]:
                    os.chown(path, account.pw_uid, account.pw_gid)
        with (self.base / "server.log").open("ab") as log:
            self.launcher = subprocess.Popen(  # noqa: S603 - a fixed argv
                [shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.launcher.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited ({self.launcher.returncode}); see {self.base}/server.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.name} not listening after {timeout:.0f} s")
            time.sleep(0.5)

    def _pid(self) -> int | None:
        try:
            return int((self.base / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL the node (no clean shutdown), and wait until its port is closed."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM, grace=20.0)

    def _signal(self, sig: int, grace: float = 10.0) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.launcher is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.launcher.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.launcher.wait(timeout=10)
        while _listening(self.port) and time.monotonic() < deadline + 10:
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie of ours counts as gone.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][:1] != "Z"
    return False
