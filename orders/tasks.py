"""Celery tasks: thin wrappers that take ids and call one service.

Retry policy lives here:
- Submission (orders, refills, cancels) is acknowledged early and never retried by Celery:
  a redelivered message after a crash could buy twice. The services' compare-and-set and
  the sweeper make a lost message harmless instead.
- Status sync is idempotent (row locks, terminal statuses never regress, refund keys), so
  it is acknowledged late and may be redelivered.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import services

SUBMIT_LIMITS: dict[str, Any] = {"soft_time_limit": 60, "time_limit": 90}
SYNC_LIMITS: dict[str, Any] = {"soft_time_limit": 120, "time_limit": 180}
BEAT_LIMITS: dict[str, Any] = {"soft_time_limit": 50, "time_limit": 58}


@shared_task(acks_late=False, ignore_result=True, **SUBMIT_LIMITS)
def order_submit_task(order_id: int) -> str:
    return services.order_submit(order_id=order_id)


@shared_task(acks_late=False, ignore_result=True, **SUBMIT_LIMITS)
def refill_submit_task(refill_id: int) -> str:
    return services.refill_submit(refill_id=refill_id)


@shared_task(acks_late=False, ignore_result=True, **SUBMIT_LIMITS)
def cancel_submit_task(cancel_id: int) -> str:
    return services.cancel_submit(cancel_id=cancel_id)


@shared_task(acks_late=True, ignore_result=True, **SYNC_LIMITS)
def order_sync_chunk_task(provider_id: int, order_ids: list[int]) -> dict[str, int]:
    return services.order_sync_chunk(provider_id=provider_id, order_ids=order_ids)


@shared_task(acks_late=True, ignore_result=True, **SYNC_LIMITS)
def refill_sync_chunk_task(provider_id: int, refill_ids: list[int]) -> dict[str, int]:
    return services.refill_sync_chunk(provider_id=provider_id, refill_ids=refill_ids)


@shared_task(acks_late=False, ignore_result=True, **BEAT_LIMITS)
def orders_sweep_task() -> dict[str, int]:
    return services.orders_sweep()


@shared_task(acks_late=False, ignore_result=True, **BEAT_LIMITS)
def orders_sync_dispatch_task() -> int:
    """One task per chunk of ≤100 orders, so more workers sync faster."""
    plan = services.orders_sync_plan()
    for provider_id, order_ids in plan:
        order_sync_chunk_task.apply_async(kwargs={"provider_id": provider_id, "order_ids": order_ids})
    return len(plan)


@shared_task(acks_late=False, ignore_result=True, **BEAT_LIMITS)
def refills_sync_dispatch_task() -> int:
    plan = services.refills_sync_plan()
    for provider_id, refill_ids in plan:
        refill_sync_chunk_task.apply_async(kwargs={"provider_id": provider_id, "refill_ids": refill_ids})
    return len(plan)
