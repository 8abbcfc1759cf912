"""Celery tasks for webhooks: thin, by id. Delivery is idempotent (the claim in
event_deliver), so a redelivered message is harmless and the tasks acknowledge late."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import pace, services

# Connect + read timeouts are bounded by settings; these cover them with room to record.
SEND_LIMITS: dict[str, Any] = {"soft_time_limit": 90, "time_limit": 120}
BEAT_LIMITS: dict[str, Any] = {"soft_time_limit": 50, "time_limit": 58}


@shared_task(acks_late=True, ignore_result=True, **SEND_LIMITS)
def webhook_deliver_task(event_pk: int) -> str:
    pace.give_way()  # order submission first (pace.py)
    return services.event_deliver(event_pk=event_pk)


@shared_task(acks_late=False, ignore_result=True, **SEND_LIMITS)
def webhook_replay_task(event_pk: int) -> bool:
    return services.event_replay(event_pk=event_pk)


@shared_task(acks_late=False, ignore_result=True, **BEAT_LIMITS)
def webhooks_sweep_task() -> int:
    return services.events_sweep()
