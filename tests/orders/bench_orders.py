"""Benchmark of submission and status sync (not collected by the suite; run it by name):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \\
        .venv/bin/pytest tests/orders/bench_orders.py -q -s

It starts the provider simulator as its own process (as a real provider is), answering
every request after BENCH_LATENCY_MS (100), places BENCH_ORDERS orders (default 1000), then
starts BENCH_PROCESSES (1) real `celery worker --pool=threads -c BENCH_THREADS` (16)
processes and measures how fast they are sent. Then it times
one status-sync pass over all of them: synchronously (`manage.py orders_sync`) and fanned
out through the worker in chunk tasks. Numbers are printed, never asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from orders.models import Order, State, Status
from orders.services import order_place
from orders.tasks import orders_sync_dispatch_task
from tests.net import free_port
from tests.orders.factories import Shop, fund

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ORDERS = int(os.environ.get("BENCH_ORDERS", "1000"))
THREADS = int(os.environ.get("BENCH_THREADS", "16"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "1"))
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "100"))


class RemoteSimulator:
    """The Simulator methods the benchmark needs, over the control endpoint of a process."""

    def __init__(self, port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}/api/v2"

    def _cmd(self, cmd: str, **arguments: Any) -> Any:
        reply = requests.post(f"{self.base_url}/control", json={"cmd": cmd, **arguments}, timeout=30)
        reply.raise_for_status()
        return reply.json()["results"][0]

    def add_service(self, **arguments: Any) -> int:
        return int(self._cmd("add_service", **arguments))

    def force_status(self, order: int, status: str, remains: int | None = None) -> None:
        self._cmd("force_status", order=order, status=status, remains=remains)


@pytest.fixture
def remote_simulator() -> Iterator[RemoteSimulator]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.provider",
            "--port",
            str(port),
            "--latency-ms",
            str(LATENCY_MS),
            "--speed",
            "100000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim = RemoteSimulator(port)
    try:
        _wait(lambda: _up(sim), timeout=20)
        yield sim
    finally:
        process.terminate()
        process.wait(10)


def _up(sim: RemoteSimulator) -> bool:
    try:
        return requests.get(f"{sim.base_url}/control", timeout=1).ok
    except requests.RequestException:
        return False


def _start_workers() -> list[subprocess.Popen[bytes]]:
    db = connection.settings_dict
    env = {
        **os.environ,
        # The workers must use the test database this process created.
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        "PROVIDERS_ALLOW_PRIVATE_URLS": "true",
        "LOG_LEVEL": "WARNING",
    }
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    processes = [
        subprocess.Popen(
            [
                celery,
                "-A",
                "smmpanel",
                "worker",
                "--pool=threads",
                f"--concurrency={THREADS}",
                "--loglevel=WARNING",
                "-n",
                f"bench{i}@%h",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(PROCESSES)
    ]
    return processes


def _wait(predicate: Callable[[], bool], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_bench_submission_and_sync(customer, remote_simulator, settings, queue):
    from smmpanel.celery import app

    simulator = remote_simulator
    settings.ORDERS_SYNC_MIN_INTERVAL_SECONDS = 0
    settings.ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER = 1000
    fund(customer, "1000000")
    service = Shop(simulator=simulator).service(allow_duplicate_link=True, max=1_000_000)  # type: ignore[arg-type]

    t0 = time.monotonic()
    orders = [
        order_place(user=customer, service_id=service.pk, fields={"link": f"https://x.com/p/{i}", "quantity": 100})
        for i in range(ORDERS)
    ]
    placing = time.monotonic() - t0
    ids = [o.pk for o in orders]

    app.control.purge()
    workers = _start_workers()
    try:
        _wait(lambda: len(app.control.ping(timeout=0.5)) >= PROCESSES, timeout=60)
        from orders.tasks import order_submit_task

        t0 = time.monotonic()
        for pk in ids:
            order_submit_task.apply_async(kwargs={"order_id": pk})
        _wait(lambda: Order.objects.filter(pk__in=ids, state=State.SENT).count() == ORDERS)
        submitting = time.monotonic() - t0

        for o in Order.objects.filter(pk__in=ids[::2]):
            simulator.force_status(int(o.provider_order_id), "In progress", remains=50)
        Order.objects.filter(pk__in=ids).update(last_checked_at=None)
        t0 = time.monotonic()
        orders_sync_dispatch_task.delay()
        hour_ago = timezone.now() - timezone.timedelta(hours=1)
        _wait(
            lambda: (
                Order.objects.filter(pk__in=ids[::2], status=Status.IN_PROGRESS).count() == len(ids[::2])
                and not Order.objects.filter(pk__in=ids, last_checked_at__lt=hour_ago).exists()
            )
        )
        fanned = time.monotonic() - t0
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(30)
        app.control.purge()

    Order.objects.filter(pk__in=ids).update(last_checked_at=None)
    for o in Order.objects.filter(pk__in=ids[1::2]):
        simulator.force_status(int(o.provider_order_id), "Processing")
    t0 = time.monotonic()
    call_command("orders_sync", "--no-refills")
    synchronous = time.monotonic() - t0
    assert Order.objects.filter(pk__in=ids[1::2], status=Status.PROCESSING).count() == len(ids[1::2])
    Order.objects.filter(pk__in=ids).update(last_checked_at=None)
    t0 = time.monotonic()
    call_command("orders_sync", "--no-refills")
    steady = time.monotonic() - t0

    print(
        f"\n{ORDERS} orders, simulator latency {LATENCY_MS} ms, {PROCESSES} worker processes × {THREADS} threads\n"
        f"  placing (one web thread):      {placing:6.2f} s  {ORDERS / placing:7.1f} orders/s\n"
        f"  submitting (workers):          {submitting:6.2f} s  {ORDERS / submitting:7.1f} orders/s\n"
        f"  one sync pass, worker chunks:  {fanned:6.2f} s  ({-(-ORDERS // 100)} status calls; half the orders change status)\n"
        f"  one sync pass, orders_sync:    {synchronous:6.2f} s  (half change status)\n"
        f"  one sync pass, orders_sync:    {steady:6.2f} s  (no status changes)"
    )
