import logging
import os
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smmpanel.settings")

logger = logging.getLogger(__name__)


class BrokerLossTolerantConsumer(Consumer):
    """The worker's consumer, made to survive losing a Redis broker while it holds messages.

    Celery 5.7.0 closes a lost broker connection once more after collecting it. On Redis,
    the channel then tries to hand its unacknowledged messages (a retry's countdown, a
    prefetched task) back through the transport that collect() already detached, raises
    AttributeError, and the whole worker exits on the first Redis restart. Those messages
    stay in Redis's unacked set, or are gone with it, and the sweeper re-sends every order
    from the database either way: the second close may fail quietly, and the consumer then
    reconnects as it does for any other connection loss.
    """

    def on_connection_error_after_connected(self, exc: Any) -> None:
        connection = self.connection
        if connection is not None:
            close = connection.close

            def close_quietly() -> None:
                try:
                    close()
                except AttributeError as error:
                    logger.warning("broker connection lost with unacknowledged messages: %r", error)

            connection.close = close_quietly  # type: ignore[method-assign]
        super().on_connection_error_after_connected(exc)


app = Celery("smmpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = f"{__name__}:BrokerLossTolerantConsumer"
app.autodiscover_tasks()
