from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wallets.gateways.registry import GATEWAYS
from wallets.reconcile import payments_reconcile


class Command(BaseCommand):
    help = (
        "Ask each gateway that can list its payments for those of the last N days and list the ones paid there"
        " but not credited here, and credited here but refunded there. --fix settles and reverses them."
        " Exit 1 when a difference is left open or a gateway did not answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--gateway", choices=sorted(GATEWAYS), help="Only this gateway (default: every one).")
        parser.add_argument("--days", type=int, default=3, help="How far back to look (default 3).")
        parser.add_argument("--fix", action="store_true", help="Settle and reverse what differs.")

    def handle(self, *args: Any, gateway: str | None, days: int, fix: bool, **options: Any) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1.")
        result = payments_reconcile(gateway=gateway, days=days, fix=fix)
        for line in result.lines():
            self.stdout.write(line)
        if result.open or result.errors:
            self.stderr.write(self.style.ERROR(result.summary()))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(result.summary()))
