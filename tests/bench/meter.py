"""Where the CPU went while a benchmark phase ran (this run's processes, PostgreSQL, Redis,
and everyone else). Starting and stopping the processes is devtools.procs."""

from __future__ import annotations

import os
import threading
import time


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
    if "benchhooks@" in cmdline:
        return "celery (webhooks)"  # the webhooks phase's delivery worker, apart from the order workers
    if "simulators.webhook_receiver" in cmdline:
        return "webhook receiver"
    for kind in ("gunicorn", "celery", "wrk", "simhost", "tests.bench.place"):
        if kind in cmdline:
            return {"simhost": "simulator", "tests.bench.place": "placing"}.get(kind, kind)
    return "orchestrator" if pid == os.getpid() else name
