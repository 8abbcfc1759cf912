"""The cache on Redis, forgiving an unreachable server.

Nothing the panel must get right lives in the cache: money, orders and sessions are in the
database. The cache holds rate-limit counters (the API, allauth's login throttling) and
short-lived markers (a two-factor code already used). When Redis is unreachable (being
restarted, failing over), this backend acts as an empty cache that forgets what it is
told, instead of failing every request that touches it with a 500: for that while the
limits are not enforced, and customers can still log in and use the API. Short socket
timeouts (settings.py) keep a silent server from holding requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
LOG_EVERY_SECONDS = 10.0
# INCRBY only when the key exists, in one atomic step (it keeps the key's expiry).
INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return false
"""
T = TypeVar("T")


class ReusingRedisCacheClient(RedisCacheClient):
    """One redis.Redis per connection pool, made once. Django's client builds a new one for
    every operation, and redis-py fills a table of about 170 response callbacks each time:
    about half a millisecond of CPU for each rate-limited API request. A Redis object is
    safe to share between threads (each command takes a connection from the pool)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The stubs do not describe RedisCacheClient's private helpers.
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._clients.setdefault(index, self._client(connection_pool=pool))  # type: ignore[attr-defined]
        return client

    def incr(self, key: Any, delta: int) -> Any:
        """Django checks EXISTS, then INCRBY: two round trips, and if the key expires between
        them INCRBY creates it again without an expiry, a rate-limit counter that never
        resets. One script does both atomically."""
        client = self.get_client(key, write=True)
        value = client.eval(INCR_IF_EXISTS, 1, key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


class ForgivingRedisCache(RedisCache):
    _last_logged = 0.0

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def _unreachable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - ForgivingRedisCache._last_logged >= LOG_EVERY_SECONDS:
            ForgivingRedisCache._last_logged = now
            logger.warning("cache unreachable, serving without it: %s", exc)

    def _or(self, fallback: T, operation: Callable[..., T], *args: Any) -> T:
        """operation(*args), or `fallback` (what an empty cache would answer) while Redis is
        unreachable."""
        try:
            return operation(*args)
        except UNREACHABLE as exc:
            self._unreachable(exc)
            return fallback

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._or(default, super().get, key, default, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._or(False, super().has_key, key, version)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        # An empty cache takes every add; a lock or a counter then starts afresh.
        return self._or(True, super().add, key, value, timeout, version)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._or(None, super().set, key, value, timeout, version)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        return self._or([], super().set_many, data, timeout, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._or(False, super().touch, key, timeout, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise ValueError(f"Key '{key}' not found") from exc  # what an empty cache says

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._or(False, super().delete, key, version)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._or(None, super().delete_many, keys, version)

    def clear(self) -> None:
        self._or(None, super().clear)
