"""Deliveries give way to order submission (webhooks/pace.py): they wait while the submission
queue has a backlog, never longer than the limit, and only when they have a queue of their own.
The queue length is read from the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from webhooks import pace


class Clock:
    """A fake monotonic clock that sleeping moves on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _own_queue(settings) -> Iterator[None]:
    settings.WEBHOOKS_QUEUE = "webhooks"
    settings.ORDERS_SUBMIT_QUEUE = ""
    settings.WEBHOOKS_YIELD_BACKLOG = 100
    settings.WEBHOOKS_YIELD_MAX_SECONDS = 10.0
    pace.forget()
    yield
    pace.forget()


class Lengths(list[int]):
    """The submission queue's length at each broker read (the last one repeats), and the
    queues read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def read(self, name: str) -> int:
        self.reads.append(name)
        return self[min(len(self.reads), len(self)) - 1]


@pytest.fixture
def lengths(monkeypatch: pytest.MonkeyPatch) -> Lengths:
    found = Lengths()
    monkeypatch.setattr(pace, "queue_length", found.read)
    return found


def test_a_delivery_waits_while_the_submission_queue_is_long_then_goes(lengths):
    lengths += [5000, 3000, 800, 99]
    clock = Clock()
    waited = pace.give_way(sleep=clock.sleep, clock=clock)
    # Read once a second: 5000, 3000, 800 keep it waiting, 99 lets it go.
    assert waited == pytest.approx(3.0)
    assert lengths.reads == ["celery"] * 4


def test_it_never_waits_longer_than_the_limit(lengths, settings):
    settings.WEBHOOKS_YIELD_MAX_SECONDS = 4.0
    lengths += [10**6]
    clock = Clock()
    assert pace.give_way(sleep=clock.sleep, clock=clock) == pytest.approx(4.0)
    assert all(step <= pace.STEP_SECONDS for step in clock.slept)


def test_no_backlog_no_wait(lengths):
    lengths += [99]
    clock = Clock()
    assert pace.give_way(sleep=clock.sleep, clock=clock) == 0
    assert clock.slept == []


@pytest.mark.parametrize(
    "webhooks_queue, submit_queue, backlog",
    [("", "", 100), ("celery", "", 100), ("orders", "orders", 100), ("webhooks", "", 0)],
    ids=["shared default queue", "named as the default queue", "same as the submission queue", "switched off"],
)
def test_deliveries_on_the_order_workers_queue_never_wait(lengths, settings, webhooks_queue, submit_queue, backlog):
    settings.WEBHOOKS_QUEUE = webhooks_queue
    settings.ORDERS_SUBMIT_QUEUE = submit_queue
    settings.WEBHOOKS_YIELD_BACKLOG = backlog
    lengths += [10**6]
    clock = Clock()
    assert pace.give_way(sleep=clock.sleep, clock=clock) == 0
    assert lengths.reads == []


def test_the_dedicated_submission_queue_is_the_one_watched(lengths, settings):
    settings.ORDERS_SUBMIT_QUEUE = "submit"
    lengths += [0]
    pace.give_way()
    assert lengths.reads == ["submit"]


def test_threads_share_one_reading_a_second(lengths):
    lengths += [7]
    clock = Clock()
    for _ in range(50):
        assert pace.submission_backlog(clock=clock) == 7
    assert len(lengths.reads) == 1
    clock.now += pace.CHECK_EVERY_SECONDS
    pace.submission_backlog(clock=clock)
    assert len(lengths.reads) == 2


@pytest.mark.broker
def test_the_length_is_read_from_the_broker(settings):
    name = f"pace-test-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(name, type="direct", durable=False)
    queue = Queue(name, exchange=exchange, routing_key=name, durable=False, auto_delete=False)
    with Connection(settings.CELERY_BROKER_URL) as connection:
        bound = queue(connection.default_channel)
        bound.declare()
        try:
            producer = connection.Producer()
            for n in range(7):
                producer.publish({"n": n}, exchange=exchange, routing_key=name, declare=[queue])
            assert pace.queue_length(name) == 7
            bound.get(no_ack=True)
            assert pace.queue_length(name) == 6
        finally:
            bound.purge()
            bound.delete()
    assert pace.queue_length(name) == 0  # gone: nothing to wait for


def test_an_unreachable_broker_means_no_wait(monkeypatch):
    from celery import current_app as app

    def broken(*args, **kwargs):
        raise ConnectionRefusedError("no broker")

    monkeypatch.setattr(app.pool, "acquire", broken)
    assert pace.queue_length("celery") == 0
