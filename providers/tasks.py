from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins

from catalog.services import provider_sync

from .client import ProviderError
from .models import Provider
from .services import provider_refresh_balance

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


@shared_task(soft_time_limit=120, time_limit=150)
def providers_refresh_balances() -> None:
    # One provider's failure (down, refused by the outbound-URL guard, a bug) is logged and
    # recorded and never stops the others from being checked.
    for provider in Provider.objects.filter(is_enabled=True):
        try:
            provider_refresh_balance(provider=provider)
        except SoftTimeLimitExceeded:
            raise
        except (ProviderError, ValidationError) as exc:
            logger.warning("balance of %s failed: %s", provider.name, exc)
            continue
        except Exception:
            logger.exception("balance of %s failed", provider.name)
            continue
        if provider.balance is not None and provider.balance < provider.low_balance_alert:
            mail_admins(
                f"Provider {provider.name} is low on balance",
                f"Balance: {provider.balance} {provider.balance_currency}",
            )
