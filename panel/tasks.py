"""Celery tasks of the panel layer: thin, by name."""

from __future__ import annotations

from celery import shared_task

from . import dashboard


@shared_task(acks_late=False, ignore_result=True, soft_time_limit=120, time_limit=150)
def dashboard_refresh_task() -> None:
    """The staff dashboard's finished days, computed again (every 5 minutes)."""
    dashboard.dashboard_refresh()
