from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from wallets.audit import ledger_audit_run


class Command(BaseCommand):
    help = (
        "Check the money invariants (balances against the ledger, order charges and refunds). Exit 1 on any violation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=100, help="Print at most this many violations (default 100).")

    def handle(self, *args: Any, limit: int, **options: Any) -> None:
        report = ledger_audit_run()
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Ledger OK: {report.summary()}"))
            return
        printed = report.violations[: max(limit, 0)]
        for line in printed:
            self.stderr.write(line)
        if report.count > len(printed):
            self.stderr.write(f"... and {report.count - len(printed)} more")
        self.stderr.write(self.style.ERROR(f"Ledger audit FAILED: {report.summary()}"))
        raise SystemExit(1)
