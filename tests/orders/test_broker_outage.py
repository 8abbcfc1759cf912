"""The broker goes away while customers place orders, then comes back: every order is
submitted, none twice. The test runs its own redis-server (so the machine's Redis is left
alone) and a real Celery worker process against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from kombu import pools as kombu_pools

from devtools.ports import free_port, wait_port
from devtools.procs import celery_worker_argv, redis_server_argv
from orders.models import Order, State
from orders.services import order_place, orders_sweep
from smmpanel.celery import app
from tests.conftest import IN_CI
from tests.orders.factories import fund
from wallets.audit import ledger_audit

pytestmark = [pytest.mark.broker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


class Redis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None  # the Celery worker using it

    def start(self) -> None:
        self.proc = subprocess.Popen(redis_server_argv(self.port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10, alive=lambda: self.proc is not None and self.proc.poll() is None, what="redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _reset_pools() -> None:
    # Connection and producer pools are built lazily from broker_url and kept in kombu's
    # global registry: drop them all to switch brokers.
    kombu_pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def outage_broker(settings: Any) -> Any:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("required in CI: redis-server")
        pytest.skip("needs redis-server")
    redis = Redis(free_port())
    redis.start()
    url = f"redis://127.0.0.1:{redis.port}/0"
    old = {k: app.conf[k] for k in ("broker_url", "broker_write_url", "broker_read_url")}
    app.conf.update(broker_url=url, broker_write_url=url, broker_read_url=url)
    _reset_pools()
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    db = connection.settings_dict
    env = {
        **os.environ,
        "CELERY_BROKER_URL": url,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PROVIDERS_ALLOW_PRIVATE_URLS": "true",
        "ORDERS_RETRY_BASE_SECONDS": "1",
    }
    worker = subprocess.Popen(
        celery_worker_argv(threads=4),
        cwd=ROOT,
        env=env,
    )
    redis.worker = worker
    try:
        yield redis
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        redis.stop()
        app.conf.update(**old)
        _reset_pools()


def wait_until_sent(orders: list[Order], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("state", flat=True)) == {State.SENT}:
            return
        time.sleep(0.2)
    states = list(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "state"))
    raise AssertionError(f"not all sent: {states}")


def test_orders_placed_while_the_broker_is_down_are_all_submitted_once(outage_broker, customer, shop, simulator):
    fund(customer, "100")
    service = shop.service(min=10, max=1000)
    before = [
        order_place(user=customer, service_id=service.pk, fields={"link": f"https://x.io/up{i}", "quantity": "100"})
        for i in range(3)
    ]
    wait_until_sent(before)

    outage_broker.stop()
    started = time.monotonic()
    during = [
        order_place(user=customer, service_id=service.pk, fields={"link": f"https://x.io/down{i}", "quantity": "100"})
        for i in range(4)
    ]
    # Placing neither failed nor hung on the missing broker: charged and queued.
    assert time.monotonic() - started < 15
    assert set(Order.objects.filter(pk__in=[o.pk for o in during]).values_list("state", flat=True)) == {State.QUEUED}

    outage_broker.start()  # an empty Redis: every message sent before is gone too
    orders_sweep(now=timezone.now() + timedelta(minutes=5))  # what beat runs every minute
    wait_until_sent(before + during)

    for i in range(3):
        assert simulator.add_count(int(service.routes.get().upstream.external_id), f"https://x.io/up{i}", 100) == 1
    for i in range(4):
        assert simulator.add_count(int(service.routes.get().upstream.external_id), f"https://x.io/down{i}", 100) == 1
    assert simulator.adds_total() == 7
    assert ledger_audit() == []


def test_a_worker_holding_unacknowledged_messages_survives_a_redis_restart(outage_broker, customer, shop, simulator):
    # Found by `make chaos`: Celery 5.7.0 closes the lost connection a second time after
    # collecting it; on Redis, a channel holding unacknowledged messages (a retry's countdown,
    # a task acknowledged late that was running meanwhile) then raised AttributeError and the
    # worker exited.
    from orders.tasks import order_submit_task, order_sync_chunk_task

    fund(customer, "100")
    service = shop.service(min=10, max=1000)
    sent = order_place(user=customer, service_id=service.pk, fields={"link": "https://x.io/before", "quantity": "100"})
    wait_until_sent([sent])
    held = order_submit_task.apply_async(kwargs={"order_id": 0}, countdown=600)  # held by the worker, unacked
    simulator.set_latency(4000)
    running = order_sync_chunk_task.apply_async(kwargs={"provider_id": sent.provider_id, "order_ids": [sent.pk]})
    deadline = time.monotonic() + 30
    while True:
        inspect = app.control.inspect(timeout=1)
        if held.id in str(inspect.scheduled()) and running.id in str(inspect.active()):
            break
        assert time.monotonic() < deadline, "the worker never took both tasks"
    outage_broker.stop()
    time.sleep(2)
    outage_broker.start()
    time.sleep(6)  # the sync task finishes and is acknowledged on the old channel
    assert outage_broker.worker is not None and outage_broker.worker.poll() is None, "the worker exited"

    simulator.set_latency(0)
    order = order_place(user=customer, service_id=service.pk, fields={"link": "https://x.io/after", "quantity": "100"})
    orders_sweep(now=timezone.now() + timedelta(minutes=5))
    wait_until_sent([order])
    assert simulator.adds_total() == 2
