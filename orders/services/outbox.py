"""Enqueueing the Celery tasks after commit; a lost message is re-sent by the sweeper.

The tasks module is imported when a task is sent, not at import: the tasks call these
services, so importing them here at module level would make the two wait for each other."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


logger = logging.getLogger(__name__)


# Publishing gives up quickly when the broker is down: the row stays queued and the beat
# sweeper sends it later, so a customer's request never waits on (or fails with) the broker.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def _publish(task: Any, *, countdown: float | None, **kwargs: int) -> None:
    try:
        task.apply_async(kwargs=kwargs, countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except Exception:  # any broker failure: the sweeper re-sends from the database
        logger.warning("could not enqueue %s %s; the sweeper will retry", task.name, kwargs, exc_info=True)


def enqueue_submit(*, order_id: int, countdown: float | None = None) -> None:
    from .. import tasks

    _publish(tasks.order_submit_task, countdown=countdown, order_id=order_id)


def enqueue_refill(*, pk: int, countdown: float | None = None) -> None:
    from .. import tasks

    _publish(tasks.refill_submit_task, countdown=countdown, refill_id=pk)


def enqueue_cancel(*, pk: int, countdown: float | None = None) -> None:
    from .. import tasks

    _publish(tasks.cancel_submit_task, countdown=countdown, cancel_id=pk)
