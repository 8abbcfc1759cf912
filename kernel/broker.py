"""kombu's Redis transport, with one Redis client per channel for its own commands.

kombu makes a new `redis.Redis` for every command it sends outside the consumer's event
loop (`Channel.conn_or_acquire`): every task published from the web process (an order's
submission) built one, and a Redis object fills a table of about 170 response callbacks
when it is made: about a fifth of a publish's CPU. This channel makes it once, for its
connection pool, and reuses it; a Redis object is safe to share between threads (each
command takes a connection from the pool). Selected by settings.py for `redis://` brokers.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _reused: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's BRPOP client, made once by kombu itself
            return super()._create_client(asynchronous=True)  # type: ignore[misc]  # not in the stubs
        client = self._reused
        # A new pool (kombu drops its pools after a fork) gets a new client.
        if client is None or client.connection_pool is not self.pool:
            client = self._reused = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
