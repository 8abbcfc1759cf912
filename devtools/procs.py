"""Child processes of a run (simulator, gunicorn, Celery, redis-server), always stopped.

Each child leads its own process group, so Ctrl-C in the terminal reaches only the
orchestrator, which then stops the children, and stopping one stops whatever it forked
(gunicorn and Celery workers). Each asks the kernel for SIGTERM should the orchestrator
die without cleaning up (PR_SET_PDEATHSIG). Output goes to `<log_dir>/<name>.log`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
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
    # The signal comes when the thread that started the child ends, so start children from
    # the main thread.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """One child process in its own session, its output appended to its log file."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.logfile = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own argv
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else -1

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None

    def signal(self, sig: int) -> None:
        """Signal the group this process leads: it and its children."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def wait_stopped(self, timeout: float) -> None:
        """After a SIGTERM: wait up to `timeout`, then SIGKILL whatever is left of the group."""
        if self.popen is None:
            return
        try:
            self.popen.wait(max(0.1, timeout))
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
        # Whatever the group leader left behind (gunicorn or Celery children).
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
        self.wait_stopped(timeout)

    def log_tail(self, lines: int = 20) -> str:
        if not self.logfile.exists():
            return ""
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])


class Processes:
    """The named children of one run. A name can be started again once its process is gone."""

    def __init__(self, log_dir: Path, *, cwd: Path) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str]) -> Proc:
        old = self.procs.get(name)
        if old is not None and old.alive:
            raise RuntimeError(f"{name} is already running")
        proc = Proc(name, argv, env=env, cwd=self.cwd, log=self.log_dir / f"{name}.log").start()
        self.procs[name] = proc
        return proc

    def __getitem__(self, name: str) -> Proc:
        return self.procs[name]

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.alive

    def log_tail(self, name: str, lines: int = 20) -> str:
        proc = self.procs.get(name)
        return proc.log_tail(lines) if proc is not None else ""

    def stop(self, *names: str, timeout: float = 20.0) -> None:
        """SIGTERM the groups of `names` (default: all) together, then SIGKILL what is left
        after `timeout`. Stopped processes are forgotten."""
        chosen = [n for n in (names or list(self.procs)) if n in self.procs]
        for name in chosen:
            if self.procs[name].alive:
                self.procs[name].signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in chosen:
            self.procs.pop(name).wait_stopped(deadline - time.monotonic())

    def stop_in_order(self, order: Sequence[str], timeout: float = 15.0) -> None:
        """Stop one at a time: those not named in `order` first, then `order`'s."""
        for name in sorted(self.procs, key=lambda n: order.index(n) if n in order else -1):
            self.stop(name, timeout=timeout)


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = "") -> None:
    """Poll `predicate` (exceptions count as not yet) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or 'a condition'}")
        time.sleep(interval)


def redis_server_argv(port: int, bind: Sequence[str] = ("127.0.0.1",)) -> list[str]:
    """A private, memory-only redis-server on a loopback port (the machine's Redis is left alone),
    or on the addresses in `bind` (then reachable from them: protected mode off)."""
    argv = ["redis-server", "--port", str(port), "--bind", *bind]
    if list(bind) != ["127.0.0.1"]:
        argv += ["--protected-mode", "no"]
    return [*argv, "--save", "", "--appendonly", "no", "--loglevel", "warning"]


def celery_worker_argv(
    *, threads: int, hostname: str | None = None, loglevel: str = "WARNING", extra: Sequence[str] = ()
) -> list[str]:
    """A Celery worker of the panel with a thread pool, as deployed."""
    argv = [sys.executable, "-m", "celery", "-A", "smmpanel", "worker", "--pool", "threads"]
    argv += ["--concurrency", str(threads), "--loglevel", loglevel]
    if hostname:
        argv += ["--hostname", hostname]
    return [*argv, *extra]
