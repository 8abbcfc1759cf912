from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins

from .client import ProviderError
from .models import Provider
from .services import provider_refresh_balance

logger = logging.getLogger(__name__)


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
