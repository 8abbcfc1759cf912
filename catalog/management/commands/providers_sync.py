from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.services import provider_sync
from providers.client import ProviderError
from providers.models import Provider

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Mirror the services of every enabled provider (or one) and reprice the catalogue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", help="Only this provider (by name).")

    def handle(self, *args: Any, **options: Any) -> None:
        providers = Provider.objects.filter(is_enabled=True)
        if options["provider"]:
            providers = Provider.objects.filter(name=options["provider"])
            if not providers.exists():
                raise CommandError(f"No provider named {options['provider']!r}.")
        failed = False
        for provider in providers:
            with tqdm(desc=provider.name, unit="service", disable=None) as bar:
                try:
                    result = provider_sync(provider=provider, progress=bar.update)
                except (ProviderError, ValidationError) as exc:
                    # ValidationError: the outbound-URL guard refused the address. Either way the
                    # error is on the provider (last_sync_error) and the others are still synced.
                    failed = True
                    self.stderr.write(f"{provider.name}: {'; '.join(getattr(exc, 'messages', [])) or exc}")
                    continue
                except Exception as exc:
                    failed = True
                    logger.exception("sync of %s failed", provider.name)
                    self.stderr.write(f"{provider.name}: {exc.__class__.__name__}: {exc}")
                    continue
            self.stdout.write(f"{provider.name}: {result.summary()}")
        if failed:
            raise CommandError("Some providers could not be synced.")
