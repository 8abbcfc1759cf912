"""kernel.broker: kombu's Redis transport, publishing through one Redis client per channel."""

from __future__ import annotations

import pytest

from smmpanel.celery import app
from tests.conftest import _require


@pytest.mark.broker
def test_a_redis_broker_publishes_through_one_client_per_channel(monkeypatch):
    import redis
    from django.conf import settings
    from kombu import Connection, Queue

    from kernel.broker import Channel, Transport

    # The suite's own broker is Redis (CI's second pass, on RabbitMQ, leaves this file out).
    _require(settings.CELERY_BROKER_URL.startswith("redis://"), "needs a Redis broker (set CELERY_BROKER_URL)")
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
