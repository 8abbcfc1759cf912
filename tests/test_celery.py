"""smmpanel.celery: workers keep their database connections across tasks, aged like the web's."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.db import connection

from smmpanel.celery import _close_old_connections, app


def _task(*, eager: bool) -> SimpleNamespace:
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celery_does_not_close_connections_after_every_task():
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 10**9


@pytest.mark.django_db
def test_an_eager_task_leaves_the_callers_connection_alone():
    connection.ensure_connection()
    before = connection.connection
    _close_old_connections(sender=_task(eager=True))
    assert connection.connection is before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_reuses_a_connection_until_it_is_too_old():
    # A new connection: one an earlier test opened may already be past CONN_MAX_AGE.
    connection.close()
    connection.ensure_connection()
    before = connection.connection
    _close_old_connections(sender=_task(eager=False))
    assert connection.connection is before
    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    _close_old_connections(sender=_task(eager=False))
    assert connection.connection is None


@pytest.mark.broker
def test_a_redis_broker_publishes_through_one_client_per_channel(monkeypatch):
    import redis
    from django.conf import settings
    from kombu import Connection, Queue

    from kernel.broker import Channel, Transport

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the Redis transport (CI's second pass runs RabbitMQ)")
    made = []
    original = redis.Redis.__init__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    queue = Queue("test-broker-reuse")
    with Connection(settings.CELERY_BROKER_URL, transport=Transport) as conn:
        channel = conn.default_channel
        assert isinstance(channel, Channel)
        queue(channel).purge()  # the channel's own clients exist from here on
        made.clear()
        producer = conn.Producer(channel)
        for n in range(20):
            producer.publish({"n": n}, routing_key=queue.name, declare=[queue], serializer="json")
        assert queue(channel).queue_declare(passive=True).message_count == 20
        assert made == []  # kombu's own transport makes one per command: 20 more here
        received = [queue(channel).get(no_ack=True).payload["n"] for _ in range(20)]
        assert received == list(range(20))
        queue(channel).delete()
    # What settings.py gives Celery for a redis:// broker.
    assert app.conf.broker_transport == "kernel.broker:Transport"
