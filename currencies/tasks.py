from __future__ import annotations

from celery import shared_task

from . import conf
from .services import rates_refresh


@shared_task(soft_time_limit=60, time_limit=90, ignore_result=True)
def rates_refresh_task() -> str:
    """The beat task: refresh automatic rates from CURRENCY_RATES_URL (a no-op without one)."""
    if not conf.rates_url():
        return "no rates source configured"
    return rates_refresh().summary()
