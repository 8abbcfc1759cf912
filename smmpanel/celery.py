import logging
import os
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smmpanel.settings")

logger = logging.getLogger(__name__)


class BrokerLossTolerantConsumer(Consumer):
    """The worker's consumer, made to survive losing a Redis broker while it holds messages.

    Celery 5.7.0 closes a lost broker connection once more after collecting it. On Redis
    that second close drops the channel's connection pool after collect() detached its
    transport, so handing back unacknowledged messages (a retry's countdown, a prefetched
    task) or acknowledging a task that was running meanwhile then raises AttributeError,
    and the whole worker exits on a Redis restart. Collecting is enough, as in Celery 5.6:
    the old socket goes with the old connection, and the consumer reconnects as usual.
    Messages the broker lost are re-sent by the sweeper from the database.
    """

    def on_connection_error_after_connected(self, exc: Any) -> None:
        if self.connection is not None:
            self.connection.close = _collected_already  # type: ignore[method-assign]
        super().on_connection_error_after_connected(exc)


def _collected_already() -> None:
    logger.info("broker connection lost: collected, not closed again")


app = Celery("smmpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = f"{__name__}:BrokerLossTolerantConsumer"
app.autodiscover_tasks()
