"""Child processes of a benchmark run (simulator, gunicorn, Celery workers), always stopped.

Each child gets its own process group (so Ctrl-C in the terminal reaches only the
orchestrator, which then stops the children in order) and asks the kernel for SIGTERM
should the orchestrator die without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    # Runs in the forked child before exec: only a plain C call, nothing that takes a lock.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        if name in self._running:
            raise RuntimeError(f"{name} is already running")
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self._running[name] = process
        return process

    def alive(self, name: str) -> bool:
        process = self._running.get(name)
        return process is not None and process.poll() is None

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, *names: str, timeout: float = 20.0) -> None:
        """SIGTERM each process group, then SIGKILL whatever is still there after `timeout`."""
        chosen = [n for n in (names or list(self._running)) if n in self._running]
        for name in chosen:
            _signal_group(self._running[name], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in chosen:
            process = self._running.pop(name)
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(10)
            # Whatever the group leader left behind (gunicorn or Celery children).
            _signal_group(process, signal.SIGKILL)

    def stop_all(self) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or 'a condition'}")
        time.sleep(interval)


def _cpu_by_process() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command name) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    result: dict[int, tuple[int, float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        result[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, name)
    return result


class ForeignLoad:
    """CPU that processes outside this run (and outside the database and Redis servers) use
    while a phase runs: another test suite or benchmark makes the figures meaningless."""

    SERVERS = ("postgres", "redis-server")

    def __init__(self) -> None:
        self._start: dict[int, tuple[int, float, str]] = {}
        self._began = 0.0

    def start(self) -> None:
        self._start = _cpu_by_process()
        self._began = time.monotonic()

    def share(self) -> float:
        """Foreign CPU since start(), as a share of the machine's capacity (0..1)."""
        now = _cpu_by_process()
        mine = {os.getpid()}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _cpu, _name) in now.items():
                if pid not in mine and ppid in mine:
                    mine.add(pid)
                    changed = True
        used = 0.0
        for pid, (_ppid, cpu, name) in now.items():
            if pid in mine or name.startswith(self.SERVERS) or pid <= 2:
                continue
            used += cpu - self._start.get(pid, (0, 0.0, ""))[1]
        elapsed = max(time.monotonic() - self._began, 1e-6)
        return round(max(used, 0.0) / (elapsed * (os.cpu_count() or 1)), 3)
