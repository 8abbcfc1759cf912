"""Deliveries give way to order submission.

On a machine where the webhooks worker shares the cores with the order workers, a burst of
deliveries (a sync pass that moved thousands of orders) would take CPU from sending orders to
providers. So, when deliveries have a queue of their own, each one first looks at the
order-submission queue: while it holds WEBHOOKS_YIELD_BACKLOG waiting messages or more, the
delivery waits (sleeping, no CPU), at most WEBHOOKS_YIELD_MAX_SECONDS, then goes anyway, so
that events keep flowing under a backlog that never ends. Customers see their webhook a few
seconds later; no order waits for one.

The queue length is read from the broker (a passive queue declare: LLEN on Redis, the
queue's ready-message count on RabbitMQ), at most once a second per worker process. When it
cannot be read, nothing waits. Deliveries on the order workers' own queue never wait: the
sleep would hold a slot an order needs.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0
STEP_SECONDS = 0.5

_lock = threading.Lock()
_reading: tuple[float, int] = (-math.inf, 0)


def submission_queue() -> str:
    return settings.ORDERS_SUBMIT_QUEUE or str(current_app.conf.task_default_queue)


def enabled() -> bool:
    return (
        settings.WEBHOOKS_YIELD_BACKLOG > 0
        and bool(settings.WEBHOOKS_QUEUE)
        and submission_queue() != settings.WEBHOOKS_QUEUE
    )


def queue_length(name: str) -> int:
    """Messages waiting in this broker queue (not those a worker already holds); 0 when the
    queue does not exist (an empty Redis queue has no key) or the broker cannot be asked."""
    try:
        with current_app.pool.acquire(block=True, timeout=2) as connection:
            # A channel of its own: on RabbitMQ a failed passive declare closes the channel,
            # and the pooled connection's default channel publishes tasks.
            channel: Any = cast(Any, connection).channel()
            try:
                return int(channel.queue_declare(queue=name, passive=True).message_count)
            finally:
                channel.close()
    except Exception:  # not knowing means not waiting
        logger.debug("could not read the length of queue %s", name, exc_info=True)
        return 0


def submission_backlog(*, clock: Callable[[], float] = time.monotonic) -> int:
    """The submission queue's length, read from the broker at most once a second per process."""
    global _reading
    with _lock:
        at, length = _reading
        if clock() - at >= CHECK_EVERY_SECONDS:
            length = queue_length(submission_queue())
            _reading = (clock(), length)
        return length


def forget() -> None:
    """Drop the remembered reading (tests)."""
    global _reading
    with _lock:
        _reading = (-math.inf, 0)


def give_way(*, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> float:
    """Wait while order submission has a backlog, at most WEBHOOKS_YIELD_MAX_SECONDS.
    Returns the seconds waited."""
    if not enabled():
        return 0.0
    began = clock()
    limit = settings.WEBHOOKS_YIELD_MAX_SECONDS
    while submission_backlog(clock=clock) >= settings.WEBHOOKS_YIELD_BACKLOG:
        waited = clock() - began
        if waited >= limit:
            break
        sleep(min(STEP_SECONDS, limit - waited))
    return clock() - began
