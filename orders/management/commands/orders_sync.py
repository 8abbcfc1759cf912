"""One status-sync pass, run here and now instead of by beat and the workers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.services import order_sync_chunk, orders_sync_plan, refill_sync_chunk, refills_sync_plan


class Command(BaseCommand):
    help = "Sync the status of active orders (and refills) with their providers once, synchronously."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-chunks", type=int, default=None, help="At most this many chunks of 100 per provider."
        )
        parser.add_argument("--no-refills", action="store_true", help="Leave refill statuses alone.")

    def handle(self, *args: Any, max_chunks: int | None, no_refills: bool, **options: Any) -> None:
        totals: dict[str, int] = {}
        plan = orders_sync_plan(max_chunks=max_chunks)
        for provider_id, order_ids in plan:
            for key, value in order_sync_chunk(provider_id=provider_id, order_ids=order_ids).items():
                totals[key] = totals.get(key, 0) + value
        self.stdout.write(f"orders: {len(plan)} chunks, " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
        if no_refills:
            return
        refill_totals: dict[str, int] = {}
        refill_plan = refills_sync_plan(max_chunks=max_chunks)
        for provider_id, refill_ids in refill_plan:
            for key, value in refill_sync_chunk(provider_id=provider_id, refill_ids=refill_ids).items():
                refill_totals[key] = refill_totals.get(key, 0) + value
        self.stdout.write(
            f"refills: {len(refill_plan)} chunks, " + ", ".join(f"{k} {v}" for k, v in sorted(refill_totals.items()))
        )
