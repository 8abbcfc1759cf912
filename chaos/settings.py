"""Settings for the chaos run: the panel's own settings, with beat's periodic work compressed.

Every process of the run (gunicorn, workers, beat, the orchestrator) uses this module, so
they share one configuration. Only time is compressed: the sweeper and status sync run
every CHAOS_BEAT_SECONDS instead of every minute, so a run of a few minutes sees many of
their passes. Everything else comes from the environment, as in production.
"""

from __future__ import annotations

import os
from pathlib import Path

from smmpanel.settings import *  # noqa: F403
from smmpanel.settings import CELERY_BEAT_SCHEDULE as _SCHEDULE

_EVERY = float(os.environ.get("CHAOS_BEAT_SECONDS", "10"))
CELERY_BEAT_SCHEDULE = {
    **_SCHEDULE,
    "orders-sweep": {**_SCHEDULE["orders-sweep"], "schedule": _EVERY},
    "orders-sync": {**_SCHEDULE["orders-sync"], "schedule": _EVERY},
    "orders-refills-sync": {**_SCHEDULE["orders-refills-sync"], "schedule": _EVERY * 3},
}
# Static files collected for this run only (production settings need the manifest); not
# compressed, which would only slow the start.
if os.environ.get("CHAOS_STATIC_ROOT"):
    STATIC_ROOT = Path(os.environ["CHAOS_STATIC_ROOT"])
    STORAGES = {
        **STORAGES,  # noqa: F405
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }

# A worker on a host of its own (`--hosts N`, chaos/hosts.py) reaches the broker over a link
# that can be cut: a socket timeout (else a synchronous command waits forever on the dead
# connection and kombu's health checks never run), keepalives and a user timeout end a silent
# connection within seconds (the database URL carries the same as libpq options). RabbitMQ
# keeps Celery's heartbeat: py-amqp sets a one-second user timeout and keepalives itself, and
# the relay in front of the node ends a cut host's connections, so the node requeues their
# messages (a shorter heartbeat only made idle connections miss it under load).
if os.environ.get("CHAOS_HOST"):
    import socket as _socket

    from chaos.hosts import KEEPALIVE, USER_TIMEOUT_MS

    if CELERY_BROKER_URL.startswith("redis://"):  # noqa: F405
        CELERY_BROKER_TRANSPORT_OPTIONS = {
            **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "socket_keepalive_options": {
                _socket.TCP_KEEPIDLE: KEEPALIVE["idle"],
                _socket.TCP_KEEPINTVL: KEEPALIVE["interval"],
                _socket.TCP_KEEPCNT: KEEPALIVE["count"],
                _socket.TCP_USER_TIMEOUT: USER_TIMEOUT_MS,
            },
            "health_check_interval": 10,
        }
