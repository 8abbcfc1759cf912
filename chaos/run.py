"""`make chaos`: the whole panel under a mixed workload while faults are injected in turn.

    .venv/bin/python -m chaos.run [--minutes 6] [--seed 1] [--restart-postgres] [--broker rabbitmq] [--hosts 2]

Brings up, on this machine and for this run only: a fresh PostgreSQL database (`chaos` on
the local server, or CHAOS_DATABASE_URL), a private redis-server on a free port (broker and
cache; the machine's Redis is left alone), the provider simulator as its own process,
gunicorn serving the panel, two Celery workers and celery beat. Customers then place
orders through the web pages and the API (real HTTP) while these faults come in turn,
each for a bounded time:

- a worker killed with SIGKILL while submit tasks are in flight, then restarted;
- Redis killed and started again, empty;
- PostgreSQL: every connection of the chaos database terminated, again and again, for a
  while (the server is shared with other work on this machine, so it is not restarted
  unless --restart-postgres is given and nothing else is connected);
- the simulator hanging after `add`, answering an HTML challenge page (HTTP 200), an nginx
  502 page, and refusing connections.

Then the load stops, the system settles (sweep and sync run until nothing moves, bounded),
and the run checks that every order is final, `sent` or `unknown`; that the provider's add
counter matches the orders' histories exactly (never two adds for one order); that
`ledger_audit` passes; that final statuses agree with the provider's; that every customer
was told the truth and no request placed two orders; that customers met errors only while
the database was down; that every process survived; and that workers logged errors only
during the database and Redis faults, and no deadlock (chaos/checks.py). It prints the timeline
of faults, the workload counts and the findings, and exits 1 if a check fails. Everything
it started is stopped on exit, Ctrl-C or failure; the database is kept for inspection.

With --hosts 2 (root only) each worker runs on a host of its own, a network namespace with
its own address (chaos/hosts.py): it reaches PostgreSQL through a relay on its gateway, and
Redis, RabbitMQ and the simulator through the gateway too, never over loopback; both take
from the same queues. One more fault: the second host cut off from the network while its
worker has submit tasks in flight, for longer than `sending` may last plus two sweeps, then
reconnected; and two more checks: every host ran submit tasks, and each order in flight on
the cut host left `sending` exactly once. The namespaces are removed on exit too.

Time runs faster than in production so that a few minutes hold many sweeps and syncs:
beat every 10 s, a 10 s provider read timeout, `sending` given up after 40 s, retries from
5 s (see ENV below).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from chaos.hosts import Host, HostCut, Network, host_env, relay_argv
from chaos.rabbit import RabbitNode
from chaos.rabbit import available as rabbit_available
from chaos.workload import Customer, ServiceChoice, Stats, Workload
from devtools.db import admin_url, database_create
from devtools.ports import free_port, wait_port
from devtools.procs import Proc, Processes, celery_worker_argv, redis_server_argv
from devtools.simctl import SimulatorControl, simulator_argv

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chaos"
MAX_MINUTES = 10.0
SETTLE_SECONDS = 90.0
CHECK_RESERVE = 25.0
SIM_KEY = "demo-provider-key"
WEB_CUSTOMERS = 3
API_CUSTOMERS = 3
# Compressed time (production defaults in parentheses).
ENV = {
    "CHAOS_BEAT_SECONDS": "10",  # sweep and sync dispatch (60 s)
    "PROVIDER_CONNECT_TIMEOUT": "3",  # (5 s)
    "PROVIDER_READ_TIMEOUT": "10",  # (30 s)
    "ORDERS_SENDING_TIMEOUT_SECONDS": "40",  # (600 s)
    "ORDERS_RETRY_BASE_SECONDS": "5",  # (15 s)
    "ORDERS_RETRY_MAX_SECONDS": "60",  # (900 s)
    "ORDERS_SWEEP_LEASE_SECONDS": "60",  # (300 s)
    "ORDERS_SYNC_MIN_INTERVAL_SECONDS": "5",  # (60 s)
}


# --- Output --------------------------------------------------------------------------------
class Timeline:
    """Timestamped lines, printed as they happen and kept for the summary."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.out = out
        self.entries: list[tuple[float, str]] = []
        self.windows: list[tuple[str, float, float]] = []  # fault, start, end
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def log(self, text: str) -> None:
        with self._lock:
            stamp = self.now()
            self.entries.append((stamp, text))
            print(f"[{stamp:6.1f}s] {text}", file=self.out, flush=True)

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[None]:
        start = self.now()
        try:
            yield
        finally:
            self.windows.append((name, start, self.now()))


# --- Processes -----------------------------------------------------------------------------
class Cluster:
    """Every process of the run, started and stopped here."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        logdir: Path,
        ports: dict[str, int],
        sim_speed: float,
        seed: int,
        network: Network | None = None,
    ):
        self.env = env
        self.ports = ports
        self.sim_speed = sim_speed
        self.seed = seed
        self.logdir = logdir
        self.processes = Processes(logdir, cwd=ROOT)
        self.rabbit: RabbitNode | None = None  # --broker rabbitmq: the broker, Redis the cache
        self.network = network  # --hosts N: each worker on a host (network namespace) of its own
        pg = urlsplit(env["DATABASE_URL"])
        self.pg = (pg.hostname or "127.0.0.1", pg.port or 5432)

    @property
    def sim_host(self) -> str:
        """Where the simulator listens: loopback, or (--hosts) the first host's gateway, an
        address of this machine every host reaches through its own link."""
        return self.network.hosts[0].gateway if self.network else "127.0.0.1"

    def host_of(self, worker: str) -> Host | None:
        """The host a worker runs on: w1 on the first, w2 on the second (one host: none)."""
        if self.network is None:
            return None
        return self.network.hosts[(int(worker[1:]) - 1) % len(self.network.hosts)]

    @property
    def procs(self) -> dict[str, Proc]:
        return self.processes.procs

    def _proc(self, name: str, argv: list[str]) -> Proc:
        return self.processes.start(name, argv, env=self.env)

    def _wait_port(self, proc: Proc, port: int, timeout: float) -> None:
        wait_port(port, timeout, alive=lambda: proc.alive, what=proc.name)

    def start_redis(self) -> Proc:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is needed (apt-get install redis-server)")
        bind = ["127.0.0.1", *(h.gateway for h in self.network.hosts)] if self.network else ["127.0.0.1"]
        proc = self._proc("redis", redis_server_argv(self.ports["redis"], bind))
        self._wait_port(proc, self.ports["redis"], 10)
        return proc

    def start_simulator(self) -> Proc:
        options = ("--speed", str(self.sim_speed), "--seed", str(self.seed), "--host", self.sim_host)
        proc = self._proc("simulator", simulator_argv(self.ports["sim"], *options))
        wait_port(self.ports["sim"], 30, host=self.sim_host, alive=lambda: proc.alive, what=proc.name)
        return proc

    def start_relays(self) -> None:
        """--hosts: PostgreSQL (and RabbitMQ) reached from each host through its gateway."""
        assert self.network is not None
        for host in self.network.hosts:
            argv = relay_argv(host, listen_port=self.pg[1], target=self.pg)
            self.processes.start(f"pg-relay-{host.name}", argv, env=self.env)
            if self.rabbit is not None:
                argv = relay_argv(host, listen_port=self.rabbit.port, target=("127.0.0.1", self.rabbit.port))
                self.processes.start(f"amqp-relay-{host.name}", argv, env=self.env)
        for host in self.network.hosts:
            for port in (self.pg[1], *([self.rabbit.port] if self.rabbit else [])):
                wait_port(port, 10, host=host.gateway, what=f"the relay on {host.gateway}:{port}")

    def start_web(self) -> Proc:
        return self._proc("gunicorn", [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "smmpanel.wsgi"])

    def start_worker(self, name: str) -> Proc:
        options = ("--without-gossip", "--without-mingle")
        argv = celery_worker_argv(threads=8, hostname=f"{name}@chaos", loglevel="INFO", extra=options)
        host = self.host_of(name)
        if host is None:
            return self._proc(name, argv)
        return self.processes.start(name, host.exec_argv(argv), env=host_env(self.env, host, pg_port=self.pg[1]))

    def start_beat(self) -> Proc:
        schedule = self.logdir / "celerybeat-schedule"
        return self._proc(
            "beat", [str(BIN / "celery"), "-A", "smmpanel", "beat", "--schedule", str(schedule), "--loglevel", "INFO"]
        )

    def stop_all(self) -> None:
        # Load-bearing order: web and beat first, then workers, then what they talk to.
        relays = (
            [f"{kind}-relay-{h.name}" for h in self.network.hosts for kind in ("pg", "amqp")] if self.network else []
        )
        self.processes.stop_in_order(["gunicorn", "beat", "w1", "w2", *relays, "simulator", "redis"])
        if self.rabbit is not None:
            self.rabbit.stop()


# --- Django, in this process -----------------------------------------------------------------
def django_setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def seed_panel(*, sim: SimulatorControl, rng: random.Random) -> tuple[list[tuple[str, Customer]], list[ServiceChoice]]:
    from decimal import Decimal

    from allauth.account.models import EmailAddress

    from accounts.models import User
    from accounts.services import api_key_issue
    from catalog.models import Service
    from catalog.services import catalog_import_upstream, provider_sync
    from providers.models import Provider, UpstreamService
    from wallets.services import wallet_credit

    provider = Provider.objects.create(name="Chaos simulator", api_url=sim.api_url, api_key=SIM_KEY)
    provider_sync(provider=provider)
    # The faults demote the provider's routes (catalog/routing.py); the run lasts minutes, so a
    # demoted route is probed every minute instead of every five and the orders held by the
    # demotion can settle before the checks.
    from catalog.models import PanelSettings
    from catalog.services import panel_settings_get

    panel_settings_get()
    PanelSettings.objects.update(route_probe_minutes=1)
    catalog_import_upstream(
        upstream_ids=list(UpstreamService.objects.filter(provider=provider).values_list("pk", flat=True))
    )
    services = [
        ServiceChoice(pk=s.pk, min=s.min_quantity, max=s.max_quantity, cancel=s.cancel, refill=s.refill)
        for s in Service.objects.filter(type="Default", is_enabled=True, min_quantity__lte=1000).order_by("pk")
    ]
    if not services or not any(s.cancel for s in services) or not any(s.refill for s in services):
        raise RuntimeError("the simulator's catalogue lacks Default services with cancel and refill")

    customers: list[tuple[str, Customer]] = []
    for channel, count in (("web", WEB_CUSTOMERS), ("api", API_CUSTOMERS)):
        for n in range(1, count + 1):
            username = f"chaos-{channel}-{n}"
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username=username, email=f"{username}@example.com", password=password)
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
            wallet_credit(
                user=user,
                amount=Decimal("1000000"),
                kind="adjustment",
                idempotency_key=f"chaos:{user.pk}:funding",
                memo="Chaos run funds",
            )
            customers.append((channel, Customer(username, password, api_key_issue(user=user))))
    rng.shuffle(customers)
    return customers, services


# --- Faults ----------------------------------------------------------------------------------
# A host stays cut off for longer than `sending` may last plus two sweeps, so the other host
# gives up its claims while it is away.
CUT_SECONDS = float(ENV["ORDERS_SENDING_TIMEOUT_SECONDS"]) + 2 * float(ENV["CHAOS_BEAT_SECONDS"])


class Faults:
    def __init__(
        self, *, cluster: Cluster, sim: SimulatorControl, timeline: Timeline, db_url: str, restart_postgres: bool
    ):
        self.cluster = cluster
        self.sim = sim
        self.tl = timeline
        self.db_url = db_url
        self.restart_postgres = restart_postgres
        self.db_name = urlsplit(db_url).path.lstrip("/")
        self.cut: HostCut | None = None  # what the host cut fault did, for its check

    def _reset_broker_pools(self) -> None:
        from kombu import pools

        from smmpanel.celery import app

        pools.reset()
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None  # type: ignore[attr-defined]

    def _active_submits(self, worker: str) -> list[int]:
        from smmpanel.celery import app

        replies = app.control.inspect(destination=[f"{worker}@chaos"], timeout=1.0).active() or {}
        return [
            int(task.get("kwargs", {}).get("order_id", 0))
            for tasks in replies.values()
            for task in tasks
            if task.get("name") == "orders.tasks.order_submit_task"
        ]

    def wait_worker(self, worker: str, timeout: float = 40.0) -> bool:
        from smmpanel.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if app.control.ping(destination=[f"{worker}@chaos"], timeout=1.0):
                    return True
            time.sleep(0.5)
        return False

    def _slow_adds_in_flight(self, worker: str, seconds: float) -> list[int]:
        """Make adds slow, then wait (bounded) until `worker` has submit tasks in flight."""
        # Slow adds (the provider takes 3 s to answer) keep several submissions in flight.
        self.sim.command("set_fault", mode="latency", action="add", latency_ms=3000)
        self.tl.log("simulator: adds take 3 s (so submit tasks are in flight)")
        in_flight: list[int] = []
        deadline = time.monotonic() + max(seconds, 15)
        first_seen: float | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                in_flight = self._active_submits(worker)
            if in_flight and first_seen is None:
                first_seen = time.monotonic()
            if len(in_flight) >= 2 or (first_seen is not None and time.monotonic() - first_seen > 5):
                break
            time.sleep(0.3)
        return in_flight

    def kill_worker(self, seconds: float) -> None:
        """SIGKILL a worker while it is in the middle of submit tasks, then start it again."""
        worker = "w1"
        in_flight = self._slow_adds_in_flight(worker, seconds)
        proc = self.cluster.procs[worker]
        proc.kill()
        ids = ", ".join(f"#{pk}" for pk in in_flight) or "none seen"
        self.tl.log(f"FAULT worker {worker} (pid {proc.pid}) killed with SIGKILL; submit tasks in flight: {ids}")
        self.sim.clear_fault()
        time.sleep(3)
        self.cluster.start_worker(worker)
        ready = self.wait_worker(worker)
        self.tl.log(
            f"worker {worker} restarted (pid {self.cluster.procs[worker].pid})" + ("" if ready else ", NOT answering")
        )

    def cut_host(self, seconds: float) -> None:
        """--hosts: cut the last host off the network while its worker has submit tasks in
        flight, for longer than `sending` is allowed to last, then reconnect it."""
        network = self.cluster.network
        assert network is not None
        host = network.hosts[-1]
        worker = next(w for w in ("w1", "w2") if self.cluster.host_of(w) == host)
        in_flight = self._slow_adds_in_flight(worker, 15)
        started = time.time()
        network.cut(host)
        ids = ", ".join(f"#{pk}" for pk in in_flight) or "none seen"
        self.tl.log(
            f"FAULT {host.name} ({worker}, {host.address}) cut off from the network for {seconds:.0f} s; "
            f"submit tasks in flight: {ids}"
        )
        self.sim.clear_fault()
        time.sleep(seconds)
        network.heal(host)
        self.tl.log(f"{host.name} reconnected")
        ready = self.wait_worker(worker, timeout=90)
        self.cut = HostCut(host.name, worker, in_flight, started, time.time())
        self.tl.log(f"worker {worker} on {host.name} answers again" if ready else f"worker {worker} NOT answering")

    def restart_redis(self, seconds: float) -> None:
        proc = self.cluster.procs["redis"]
        proc.kill()
        role = "cache" if self.cluster.rabbit is not None else "broker and cache"
        self.tl.log(f"FAULT Redis ({role}) killed with SIGKILL; down for {seconds:.0f} s")
        time.sleep(seconds)
        self.cluster.start_redis()
        self._reset_broker_pools()
        broker = "" if self.cluster.rabbit is not None else " (every queued message is lost)"
        self.tl.log(f"Redis started again, empty{broker}")

    def restart_rabbitmq(self, seconds: float) -> None:
        node = self.cluster.rabbit
        assert node is not None
        node.kill()
        self.tl.log(f"FAULT RabbitMQ node {node.name} killed with SIGKILL; down for {seconds:.0f} s")
        time.sleep(seconds)
        node.start()
        self._reset_broker_pools()
        self.tl.log("RabbitMQ started again (durable queues and persistent messages kept)")

    def postgres(self, seconds: float) -> None:
        if self.restart_postgres and self._restart_postgres():
            return
        import psycopg

        terminated = 0
        rounds = 0
        deadline = time.monotonic() + seconds
        self.tl.log(
            f"FAULT PostgreSQL: terminating every backend of database {self.db_name!r} for {seconds:.0f} s "
            "(the server is shared, so it is not restarted)"
        )
        with psycopg.connect(admin_url(self.db_url), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.db_name,),
                ).fetchone()
                terminated += int(row[0]) if row else 0
                rounds += 1
                time.sleep(0.25)
        self.tl.log(f"PostgreSQL: {terminated} connections terminated in {rounds} rounds; connections allowed again")

    def _restart_postgres(self) -> bool:
        """A real restart, only when nothing but this run is connected to the server."""
        import psycopg

        with psycopg.connect(admin_url(self.db_url), autocommit=True) as conn:
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND datname IS DISTINCT FROM %s AND pid <> pg_backend_pid()",
                (self.db_name,),
            ).fetchone()
            version = conn.execute("SHOW server_version_num").fetchone()
        if not others or others[0] or not version or shutil.which("pg_ctlcluster") is None:
            self.tl.log(f"PostgreSQL restart skipped: {others[0] if others else '?'} other client(s) connected")
            return False
        major = str(int(version[0]) // 10000)
        self.tl.log(f"FAULT PostgreSQL {major}/main restarted (pg_ctlcluster restart -m fast)")
        started = time.monotonic()
        subprocess.run(  # noqa: S603
            ["pg_ctlcluster", "--skip-systemctl-redirect", major, "main", "restart", "-m", "fast"],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.tl.log(f"PostgreSQL accepts connections again after {time.monotonic() - started:.1f} s")
        return True

    def sim_fault(self, mode: str, seconds: float, **options: Any) -> None:
        self.sim.command("set_fault", mode=mode, **options)
        self.tl.log(f"FAULT simulator {mode} for {seconds:.0f} s")
        time.sleep(seconds)
        self.sim.clear_fault()
        self.tl.log(f"simulator {mode} cleared")

    def refuse(self, seconds: float) -> None:
        self.sim.command("set_fault", mode="refuse", seconds=seconds)
        self.tl.log(f"FAULT simulator refuses connections for {seconds:.0f} s")
        time.sleep(seconds + 0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                self.sim.summary()
                break
            time.sleep(0.2)
        self.tl.log("simulator listens again")

    def plan(self, seconds: float) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("worker SIGKILL", lambda: self.kill_worker(seconds)),
            *([("host cut", lambda: self.cut_host(CUT_SECONDS))] if self.cluster.network else []),
            ("Redis restart", lambda: self.restart_redis(seconds)),
            *([("RabbitMQ restart", lambda: self.restart_rabbitmq(seconds))] if self.cluster.rabbit else []),
            ("PostgreSQL", lambda: self.postgres(seconds)),
            ("simulator hang_after_add", lambda: self.sim_fault("hang_after_add", seconds, hang_seconds=60)),
            ("simulator http200_html", lambda: self.sim_fault("http200_html", seconds)),
            ("simulator http502_html", lambda: self.sim_fault("http502_html", seconds)),
            ("simulator refuse", lambda: self.refuse(seconds)),
        ]


# --- Settling --------------------------------------------------------------------------------
def settle_pass() -> dict[str, int]:
    """One sweep and one sync pass, here and now (beat and the workers keep running too)."""
    from django.db import close_old_connections, connections

    from orders.models import ACTIVE_STATUSES, CancelRequest, Order, Refill, RequestState, State
    from orders.services import (
        order_sync_chunk,
        orders_sweep,
        orders_sync_plan,
        refill_sync_chunk,
        refills_sync_plan,
    )

    close_old_connections()
    try:
        orders_sweep()
        for provider_id, ids in orders_sync_plan():
            order_sync_chunk(provider_id=provider_id, order_ids=ids)
        for provider_id, ids in refills_sync_plan():
            refill_sync_chunk(provider_id=provider_id, refill_ids=ids)
        in_flight = (RequestState.QUEUED, RequestState.SENDING)
        return {
            "queued": Order.objects.filter(state=State.QUEUED).count(),
            "sending": Order.objects.filter(state=State.SENDING).count(),
            "active": Order.objects.filter(state=State.SENT, status__in=ACTIVE_STATUSES).count(),
            "requests": Refill.objects.filter(state__in=in_flight).count()
            + CancelRequest.objects.filter(state__in=in_flight).count(),
        }
    finally:
        connections.close_all()


def settle(tl: Timeline, until: float) -> bool:
    """Sweep and sync until nothing is on its way and active orders stop moving. True when quiet."""
    previous: dict[str, int] | None = None
    steady = 0
    while tl.now() < until:
        counts = settle_pass()
        moving = counts["queued"] + counts["sending"] + counts["requests"]
        steady = steady + 1 if previous is not None and counts["active"] == previous["active"] else 0
        previous = counts
        if moving == 0 and (counts["active"] == 0 or steady >= 3):
            tl.log(f"settled: {counts['active']} sent orders still active upstream, nothing queued or sending")
            return True
        time.sleep(5)
    tl.log(f"NOT settled within the time allowed: {previous}")
    return False


# --- The report ------------------------------------------------------------------------------
def report_workload(stats: Stats, tl: Timeline) -> list[str]:
    c = stats.counts
    lines = []
    for channel in ("web", "api"):
        intents = [i for i in stats.intents if i.channel == channel]
        lines.append(
            f"{channel}: {c[f'{channel}.placed']} orders placed of {len(intents)} attempted "
            f"({c[f'{channel}.refused']} refused by the panel, {c[f'{channel}.gave_up']} given up after retries, "
            f"{sum(i.tries - 1 for i in intents)} retries); {c[f'{channel}.requests']} requests, "
            f"{c[f'{channel}.5xx']} 5xx, {c[f'{channel}.connection_error']} connection errors, "
            f"{c[f'{channel}.timeout']} timeouts, {c[f'{channel}.429']} 429"
        )
    lines.append(
        f"web: {c['web.logins']} logins, {c['web.relogins']} re-logins, {c['web.list_pages']} order list pages, "
        f"{c['web.cancels']} cancels; api: {c['api.status_calls']} status calls, {c['api.cancels']} cancels "
        f"accepted ({c['api.cancel_refused']} refused), {c['api.refills']} refills ({c['api.refill_refused']} refused)"
    )
    for text, n in stats.refusals.most_common(6):
        lines.append(f"  refused x{n}: {text}")
    for key, n in sorted(
        Counter(f"{window}: {channel} {kind}" for window, channel, kind in failures_by_window(stats, tl)).items()
    ):
        lines.append(f"  client failures during {key}: {n}")
    return lines


def window_at(tl: Timeline, moment: float, grace: float) -> str:
    """The fault going on (or just ended) at this moment of the run."""
    windows = [name for name, start, end in tl.windows if start <= moment <= end + grace]
    return windows[-1] if windows else "no fault"


def failures_by_window(stats: Stats, tl: Timeline, grace: float = 5.0) -> list[tuple[str, str, str]]:
    """(fault, channel, kind) for each failure a client saw."""
    return [(window_at(tl, moment, grace), channel, kind) for moment, channel, kind in stats.failures]


LOG_ERROR_RE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+): (?:ERROR|CRITICAL)/[^\]]*\] (.*)")
TASK_ID_RE = re.compile(r"\[[0-9a-f-]{36}\]")


def check_processes(cluster: Cluster) -> Any:
    """Every process is still running at the end: none died of a fault it should survive."""
    from chaos.checks import Check

    dead = [
        f"{name} (pid {proc.pid}) exited with {proc.returncode}"
        for name, proc in cluster.procs.items()
        if not proc.alive
    ]
    return Check(
        "every process survived the faults (the worker killed on purpose was restarted)",
        not dead,
        dead or [", ".join(f"{name} {proc.pid}" for name, proc in cluster.procs.items())],
    )


def check_process_logs(rundir: Path, tl: Timeline, cut_worker: str = "") -> Any:
    """Workers and beat log errors only while the database or the broker is gone (and the worker
    of a host cut off, while it is); never a deadlock."""
    from chaos.checks import Check

    seen: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for log in sorted(rundir.glob("*.log")):
        if log.stem not in ("beat", "w1", "w2"):
            continue
        for line in log.read_text(errors="replace").splitlines():
            match = LOG_ERROR_RE.match(line)
            if match is None:
                continue
            moment = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() - tl.wall0
            window = window_at(tl, moment, grace=10.0)
            expected: tuple[str, ...] = ("PostgreSQL", "Redis restart", "RabbitMQ restart")
            if log.stem == cut_worker:
                expected += ("host cut",)
            text = TASK_ID_RE.sub("", match[2])[:150]
            seen[window] += 1
            if "deadlock" in text or window not in expected:
                problems[f"{log.stem} at {moment:.0f}s ({window}): {text}"] += 1
    cut = f" (and {cut_worker} while its host was cut off)" if cut_worker else ""
    return Check(
        f"workers and beat logged errors only while PostgreSQL, Redis or RabbitMQ was down{cut}, and no deadlock",
        not problems,
        [", ".join(f"{n} during {w}" for w, n in sorted(seen.items())) or "no errors logged"]
        + [f"{text} (x{n})" if n > 1 else text for text, n in problems.most_common(12)],
    )


SUBMIT_DONE_RE = re.compile(r"Task orders\.tasks\.order_submit_task\[[0-9a-f-]{36}\] succeeded")


def check_hosts_submitted(rundir: Path, cluster: Cluster, network: Network) -> Any:
    """--hosts: both hosts took submit tasks from the shared queue and ran them to the end."""
    from chaos.checks import Check

    done: dict[str, int] = {}
    for host in network.hosts:
        workers = [w for w in ("w1", "w2") if cluster.host_of(w) == host]
        logs = [rundir / f"{w}.log" for w in workers]
        done[host.name] = sum(len(SUBMIT_DONE_RE.findall(p.read_text(errors="replace"))) for p in logs if p.exists())
    return Check(
        "every host ran submit tasks from the shared queues",
        all(done.values()),
        [", ".join(f"{name}: {n} submit tasks done" for name, n in done.items())],
    )


def check_client_failures(stats: Stats, tl: Timeline) -> Any:
    """Customers meet errors only while the database itself is gone: every other fault is absorbed."""
    from chaos.checks import Check

    outside = Counter(f"{w}: {c} {k}" for w, c, k in failures_by_window(stats, tl) if w != "PostgreSQL" and k != "429")
    return Check(
        "customers saw errors (5xx, dropped connections, timeouts) only while PostgreSQL was down",
        not outside,
        [f"{key}: {n}" for key, n in sorted(outside.items())]
        or [f"{len(stats.failures)} failure(s), all during the PostgreSQL fault"],
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--minutes", type=float, default=None, help="the whole run, at most 10 (default 6; 9 with --hosts 2)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restart-postgres", action="store_true", help="restart the server instead (only if alone)")
    parser.add_argument(
        "--broker",
        choices=("redis", "rabbitmq"),
        default="redis",
        help="rabbitmq: a private RabbitMQ node is the broker (Redis stays the cache), restarted as a fault",
    )
    parser.add_argument(
        "--hosts",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: each worker on a host of its own (a network namespace, root only), and a host cut off as a fault",
    )
    args = parser.parse_args(argv)
    if args.minutes is None:
        args.minutes = 9.0 if args.hosts > 1 else 6.0
    if not 3.0 <= args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be between 3 and {MAX_MINUTES:.0f}")
    return args


def first_answer(url: str, within: float) -> requests.Response:
    """GET `url` until it answers (a machine busy with other work may make the first take long)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return requests.get(url, timeout=15)
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    tl = Timeline()
    budget = args.minutes * 60
    rng = random.Random(args.seed)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    rundir = ROOT / "var" / "chaos" / stamp
    rundir.mkdir(parents=True, exist_ok=True)
    db_url = os.environ.get("CHAOS_DATABASE_URL", DEFAULT_DATABASE_URL)
    ports = {"redis": free_port(), "sim": free_port(), "web": free_port()}
    redis_url = f"redis://127.0.0.1:{ports['redis']}"
    rabbit = None
    if args.broker == "rabbitmq":
        if not rabbit_available():
            print("rabbitmq-server is needed for --broker rabbitmq (apt-get install rabbitmq-server)", file=sys.stderr)
            return 2
        rabbit = RabbitNode(port=free_port(), dist_port=free_port(), base=rundir / "rabbitmq")
    network = None
    if args.hosts > 1:
        if os.geteuid() != 0 or shutil.which("socat") is None:
            print("--hosts needs root (network namespaces) and socat (apt-get install socat)", file=sys.stderr)
            return 2
        network = Network(args.hosts)
    env = {
        **os.environ,
        **ENV,
        "DJANGO_SETTINGS_MODULE": "chaos.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": rabbit.url if rabbit else f"{redis_url}/0",
        "CACHE_URL": f"rediscache://127.0.0.1:{ports['redis']}/1",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0",
        "PROVIDERS_ALLOW_PRIVATE_URLS": "true",
        "STAFF_REQUIRE_MFA": "false",
        "CHAOS_STATIC_ROOT": str(rundir / "static"),
        "GUNICORN_BIND": f"127.0.0.1:{ports['web']}",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "4",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    cluster = Cluster(env=env, logdir=rundir, ports=ports, sim_speed=3.0, seed=args.seed, network=network)
    cluster.rabbit = rabbit
    sim = SimulatorControl(ports["sim"], host=cluster.sim_host, timeout=10)
    workload: Workload | None = None
    stats = Stats(tl.now)
    checks: list[Any] = []
    failed_setup = ""
    print(f"Chaos run, at most {args.minutes:g} min; logs in {rundir.relative_to(ROOT)}/", flush=True)
    try:
        database_create(db_url)
        django_setup()
        tl.log(f"database {urlsplit(db_url).path.lstrip('/')!r} created fresh and migrated")
        if network is not None:
            network.up()
            tl.log(
                "hosts: "
                + "; ".join(
                    f"{h.name} = network namespace {h.netns}, {h.address} via {h.gateway}" for h in network.hosts
                )
            )
        cluster.start_redis()
        if rabbit is not None:
            rabbit.start()
            tl.log(f"private redis-server on port {ports['redis']} (cache db 1)")
            tl.log(f"private RabbitMQ node {rabbit.name} on port {rabbit.port} (the broker)")
        else:
            tl.log(f"private redis-server on port {ports['redis']} (broker db 0, cache db 1)")
        cluster.start_simulator()
        if network is not None:
            cluster.start_relays()
            relayed = "PostgreSQL" + (" and RabbitMQ" if rabbit else "")
            tl.log(
                f"{relayed} relayed on each gateway (socat); Redis and the simulator listen on the gateways; "
                + ", ".join(f"w{n} on {h.name}" for n, h in enumerate(network.hosts, 1))
            )
        customers, services = seed_panel(sim=sim, rng=rng)
        tl.log(
            f"simulator on port {ports['sim']} (order step every 3 s); {len(services)} services for sale; "
            f"{WEB_CUSTOMERS} web and {API_CUSTOMERS} API customers"
        )
        web = cluster.start_web()
        for name in ("w1", "w2"):
            cluster.start_worker(name)
        cluster.start_beat()
        wait_port(ports["web"], 30, alive=lambda: web.alive, what="gunicorn")
        faults = Faults(cluster=cluster, sim=sim, timeline=tl, db_url=db_url, restart_postgres=args.restart_postgres)
        for name in ("w1", "w2"):
            if not faults.wait_worker(name):
                raise RuntimeError(f"worker {name} does not answer")
        health = first_answer(f"http://127.0.0.1:{ports['web']}/healthz", within=60)
        if health.status_code != 200:
            raise RuntimeError(f"/healthz answers {health.status_code}: {health.text[:200]}")
        tl.log(f"gunicorn on port {ports['web']} (3 workers x 4 threads), workers w1 and w2 (8 threads each), beat")

        workload = Workload(
            base_url=f"http://127.0.0.1:{ports['web']}",
            customers=customers,
            services=services,
            stats=stats,
            run_id=uuid.uuid4().hex[:8],
            seed=args.seed,
        )
        workload.start()
        # --hosts: a minute more to settle. The faults come closer together (the cut takes 75 s
        # of the load), so the last one ends nearer the end of the load, and an order a demoted
        # route holds waits up to two probe minutes (the probe, then its own next attempt).
        settle_seconds = SETTLE_SECONDS + (60.0 if network else 0.0)
        load_end = budget - settle_seconds - CHECK_RESERVE
        plan = faults.plan(0)
        first = tl.now() + 20  # a warm-up first
        long = CUT_SECONDS + 15 if network else 0.0  # the host cut takes a slot and this much more
        slot = (load_end - first - long) / len(plan)
        duration = max(6.0, min(20.0, slot * 0.5))
        tl.log(f"load starts; {len(plan)} faults of {duration:.0f} s each, one every {slot:.0f} s after a 20 s warm-up")
        shift = 0.0
        for n, (name, inject) in enumerate(faults.plan(duration)):
            time.sleep(max(0.0, first + slot * n + shift - tl.now()))
            with tl.window(name):
                inject()
            if name == "host cut":
                shift = long
        time.sleep(max(0.0, load_end - tl.now()))
        problems = workload.finish()
        tl.log(f"load stopped ({len(stats.intents)} placements attempted)")
        for problem in problems:
            tl.log(f"CLIENT PROBLEM {problem}")
        sim.clear_fault()
        settled = settle(tl, until=budget - CHECK_RESERVE)

        from chaos import checks as chk

        checks = [chk.check_nothing_stuck(), *chk.check_adds(sim.summary(timeout=30)), chk.check_ledger()]
        checks += [chk.check_statuses(api_url=sim.api_url, key=SIM_KEY), chk.check_clients(stats.intents)]
        cut_worker = faults.cut.worker if faults.cut else ""
        checks += [
            check_client_failures(stats, tl),
            check_processes(cluster),
            check_process_logs(rundir, tl, cut_worker),
        ]
        checks.append(chk.check_provider())
        if network is not None:
            checks.append(check_hosts_submitted(rundir, cluster, network))
            checks.append(chk.check_host_cut(faults.cut))
        if problems:
            checks.append(chk.Check("every customer thread ran to the end", False, problems))
        if not settled:
            checks.append(chk.Check("the system settled in time", False, []))
        total, statuses, states = chk.order_breakdown()
    except KeyboardInterrupt:
        failed_setup = "interrupted"
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails
        import traceback

        traceback.print_exc()
        failed_setup = f"{exc.__class__.__name__}: {exc}"
    finally:
        if workload is not None:
            workload.stop.set()
        cluster.stop_all()
        if network is not None:
            network.down()
        shutil.rmtree(rundir / "static", ignore_errors=True)  # collected for this run only
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()

    print("\n==================== chaos run summary ====================")
    print(f"took {tl.now() / 60:.1f} min (budget {args.minutes:g} min); logs in {rundir.relative_to(ROOT)}/")
    print("\nTimeline:")
    for moment, text in tl.entries:
        print(f"  {moment:6.1f}s  {text}")
    print("\nWorkload:")
    for line in report_workload(stats, tl):
        print(f"  {line}")
    if failed_setup:
        print(f"\nRun aborted: {failed_setup}")
        return 2
    print(f"\nOrders at the end: {total}")
    print("  status: " + ", ".join(f"{k} {v}" for k, v in statuses.most_common()))
    print("  state:  " + ", ".join(f"{k} {v}" for k, v in states.most_common()))
    print("\nChecks:")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}")
        for line in check.lines:
            print(f"        {line}")
    failed = [c for c in checks if not c.ok]
    print(f"\nResult: {'PASS' if not failed else f'FAIL ({len(failed)} check(s) failed)'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
