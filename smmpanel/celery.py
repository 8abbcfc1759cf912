import logging
import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun
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


# Workers keep their database connections across tasks the way the web server keeps them
# across requests (CELERY_DB_REUSE_MAX in settings stops Celery closing them after every
# task): close_old_connections() closes one past CONN_MAX_AGE or left broken, and marks it
# for a health check before its next use (CONN_HEALTH_CHECKS).
@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside the caller's connection and transaction
    from django.db import close_old_connections

    close_old_connections()
