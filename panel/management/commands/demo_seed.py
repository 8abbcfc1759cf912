"""Demo data: a provider (the simulator by default), its services imported, an admin and a customer.

Idempotent: running it again changes nothing but re-syncs the provider. Passwords and the
customer's API key are generated once and kept in var/demo_credentials.json (the API key
itself is stored only as a hash in the database).
"""

from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import ApiKey, User
from accounts.services import api_key_digest, api_key_issue
from catalog.services import catalog_import_upstream, provider_sync
from currencies.services import currencies_seed_demo
from providers.client import NotSent, ProviderError
from providers.models import Provider, UpstreamService
from wallets.services import wallet_credit
from webhooks.models import Endpoint
from webhooks.services import WebhookError, endpoint_save

DEMO_PROVIDER = "Demo provider (simulator)"
DEMO_FUNDS = Decimal("100.00000")
# The local webhook receiver `make run` starts (simulators/webhook_receiver, Procfile).
DEMO_WEBHOOK_URL = "http://127.0.0.1:8913/hook"
CREDENTIALS = Path(settings.VAR_DIR) / "demo_credentials.json"


class Command(BaseCommand):
    help = "Create demo data: a provider with its services for sale, an admin and a funded customer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider-url", default=settings.SIMULATOR_URL)
        parser.add_argument("--provider-key", default=settings.SIMULATOR_KEY)
        parser.add_argument("--wait", type=float, default=0, help="Seconds to wait for the provider to answer.")
        parser.add_argument("--json", action="store_true", help="Print the credentials as JSON and nothing else.")

    def handle(self, *args: Any, **options: Any) -> None:
        creds = self._load_credentials()
        provider, _ = Provider.objects.get_or_create(
            name=DEMO_PROVIDER, defaults={"api_url": options["provider_url"], "api_key": options["provider_key"]}
        )
        if (provider.api_url, provider.api_key) != (options["provider_url"], options["provider_key"]):
            provider.api_url, provider.api_key = options["provider_url"], options["provider_key"]
            provider.save(update_fields=["api_url", "api_key"])
        self._sync(provider, wait=options["wait"], quiet=options["json"])
        unsold = UpstreamService.objects.filter(provider=provider, is_removed=False, routes__isnull=True)
        imported = catalog_import_upstream(upstream_ids=list(unsold.values_list("pk", flat=True)))

        admin = self._user(creds, "admin", "admin", "admin@example.com", staff=True)
        customer = self._user(creds, "customer", "demo", "demo@example.com", staff=False)
        self._fund(customer)
        currencies_seed_demo()
        raw_key = creds.get("customer", {}).get("api_key", "")
        if (
            not raw_key
            or not ApiKey.objects.filter(
                user=customer, digest=api_key_digest(raw_key=raw_key), revoked_at__isnull=True
            ).exists()
        ):
            raw_key = api_key_issue(user=customer)
        creds["customer"]["api_key"] = raw_key
        self._webhook(customer, creds)
        self._save_credentials(creds)

        out = {
            "admin": {"username": admin.username, "password": creds["admin"]["password"]},
            "customer": {"email": customer.email, "password": creds["customer"]["password"], "api_key": raw_key},
            "provider": {"name": provider.name, "url": provider.api_url},
        }
        if options["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            self.style.SUCCESS("Demo data ready.")
            + f" {len(imported)} service(s) imported.\n"
            + "  Panel:    http://127.0.0.1:8000/\n"
            + f"  Admin:    http://127.0.0.1:8000/admin/  user {admin.username!r} password {creds['admin']['password']!r}\n"
            + f"  Customer: {customer.email} password {creds['customer']['password']!r}\n"
            + f"  Customer API key: {raw_key}\n"
            + f"  Provider: {provider.name} at {provider.api_url}"
        )

    def _webhook(self, customer: User, creds: dict[str, Any]) -> None:
        """The demo customer's webhook endpoint at the local receiver, which reads the secret
        from the credentials file to check signatures."""
        if Endpoint.objects.filter(user=customer).exists() and creds.get("webhook_secret"):
            return
        Endpoint.objects.filter(user=customer).delete()
        try:
            secret = endpoint_save(user=customer, url=DEMO_WEBHOOK_URL)
        except WebhookError as exc:  # production settings refuse a loopback receiver
            self.stderr.write(f"No demo webhook endpoint: {exc.message}")
            return
        creds["webhook_secret"] = secret

    def _sync(self, provider: Provider, *, wait: float, quiet: bool) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                provider_sync(provider=provider)
                return
            except NotSent as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"The provider at {provider.api_url} does not answer: {exc}") from exc
                if not quiet:
                    self.stderr.write(f"Waiting for the provider at {provider.api_url}…")
                time.sleep(1)
            except ProviderError as exc:
                raise CommandError(f"Syncing {provider.name} failed: {exc}") from exc

    def _user(self, creds: dict[str, Any], slot: str, username: str, email: str, *, staff: bool) -> User:
        entry = creds.setdefault(slot, {})
        with transaction.atomic():
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": email, "is_staff": staff, "is_superuser": staff}
            )
            if created or not entry.get("password") or not user.check_password(entry["password"]):
                entry["password"] = entry.get("password") or secrets.token_urlsafe(12)
                user.set_password(entry["password"])
                user.save(update_fields=["password"])
        # Verified, so the demo logins work even where e-mail verification is mandatory.
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user

    def _fund(self, customer: User) -> None:
        wallet_credit(
            user=customer,
            amount=DEMO_FUNDS,
            kind="adjustment",
            idempotency_key=f"demo:{customer.pk}:funding",
            memo="Demo funds",
        )

    def _load_credentials(self) -> dict[str, Any]:
        if CREDENTIALS.exists():
            try:
                data = json.loads(CREDENTIALS.read_text())
                if isinstance(data, dict):
                    return data
            except ValueError:
                pass
        return {}

    def _save_credentials(self, creds: dict[str, Any]) -> None:
        CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
        CREDENTIALS.write_text(json.dumps(creds, indent=2))
        CREDENTIALS.chmod(0o600)
