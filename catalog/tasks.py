from __future__ import annotations

import logging

from celery import shared_task
from django.core.exceptions import ValidationError

from providers.client import ProviderError
from providers.models import Provider

from .quality import quality_refresh
from .services import provider_sync

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=60, time_limit=90)
def providers_sync_all() -> None:
    for provider_id in Provider.objects.filter(is_enabled=True).values_list("pk", flat=True):
        provider_sync_task.delay(provider_id)


# Idempotent (a sync mirrors the provider's current list), so a redelivery is harmless.
@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def provider_sync_task(provider_id: int) -> None:
    provider = Provider.objects.filter(pk=provider_id, is_enabled=True).first()
    if provider is None:
        return
    try:
        provider_sync(provider=provider)
    except (ProviderError, ValidationError) as exc:
        # ValidationError: the outbound-URL guard refused the provider's address at call time.
        # provider_sync has recorded it on the provider (last_sync_error).
        logger.warning("sync of %s failed: %s", provider.name, exc)


# Reads only what changed since its cursor; a missed or doubled run is harmless.
@shared_task(soft_time_limit=50, time_limit=58)
def quality_refresh_task() -> None:
    quality_refresh()
