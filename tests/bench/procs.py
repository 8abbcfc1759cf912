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
import threading
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


def _cpu_by_process() -> dict[int, tuple[int, float, str, float]]:
    """pid -> (parent pid, own CPU seconds, command name, CPU seconds of reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    result: dict[int, tuple[int, float, str, float]] = {}
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
        own = (int(fields[11]) + int(fields[12])) / tick
        reaped = (int(fields[13]) + int(fields[14])) / tick
        result[int(entry)] = (int(fields[1]), own, name, reaped)
    return result


class PhaseMeter:
    """Where the CPU went while a phase ran: this run's processes by kind (gunicorn, celery,
    wrk, the simulator, this orchestrator), the PostgreSQL backends of the benchmark's
    database, Redis, and everything else ("foreign": another test suite or benchmark, which
    makes the figures meaningless). CPU per operation is what a faster machine divides.

    A thread samples /proc twice a second, so processes that end during the phase (database
    connections closed by a thread, gunicorn workers) still count, up to their last sample.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._start: dict[int, tuple[int, float, str, float]] = {}
        self._seen: dict[int, tuple[int, float, str, float]] = {}
        self._backends: set[int] = set()
        self._began = 0.0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        self._start = _cpu_by_process()
        self._seen = dict(self._start)
        self._backends = set()
        self._began = time.monotonic()
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        now = _cpu_by_process()
        self._seen.update(now)
        marker = f" {self.database} "
        for pid, (_ppid, _cpu, name, _reaped) in now.items():
            if name.startswith("postgres") and pid not in self._backends:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        title = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if title.startswith("postgres:") and marker in title:
                    self._backends.add(pid)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample()
        seen = self._seen
        me = os.getpid()
        mine = {me}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _cpu, _name, _reaped) in seen.items():
                if pid not in mine and ppid in mine:
                    mine.add(pid)
                    changed = True
        used: dict[str, float] = {}
        for pid, (_ppid, cpu, name, reaped) in seen.items():
            before = self._start.get(pid, (0, 0.0, name, 0.0))
            if pid == me and reaped > before[3]:
                # wrk and the placing processes exit before the phase ends: their CPU is here.
                used["exited children"] = reaped - before[3]
            delta = cpu - before[1]
            if delta <= 0 or pid <= 2:
                continue
            if pid in self._backends:
                kind = "postgres"
            elif name.startswith("postgres"):
                kind = "postgres (other work)"
            elif name.startswith("redis-server"):
                kind = "redis"
            elif pid in mine:
                kind = _kind(pid, name)
            else:
                kind = "foreign"
            used[kind] = used.get(kind, 0.0) + delta
        elapsed = max(time.monotonic() - self._began, 1e-6)
        result = {kind: round(seconds, 2) for kind, seconds in sorted(used.items(), key=lambda kv: -kv[1])}
        result["wall"] = round(elapsed, 2)
        result["foreign_share"] = round(used.get("foreign", 0.0) / (elapsed * (os.cpu_count() or 1)), 3)
        return result


def _kind(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = name
    for kind in ("gunicorn", "celery", "wrk", "simhost", "tests.bench.place"):
        if kind in cmdline:
            return {"simhost": "simulator", "tests.bench.place": "placing"}.get(kind, kind)
    return "orchestrator" if pid == os.getpid() else name
