"""Audits of the invariants that hold over the whole database, each app checking its own.

An app registers its checks from its `AppConfig.ready()`; `audit_run` runs every registered
check, in the order they were registered, in one snapshot (REPEATABLE READ on PostgreSQL),
so rows written while the audit runs cannot produce false alarms. A check is a callable that
adds one line per violation to the report, and what it went through to the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction

DEFAULT_MAX_VIOLATIONS = 10_000


@dataclass
class AuditReport:
    violations: list[str] = field(default_factory=list)
    not_listed: int = 0
    max_violations: int = DEFAULT_MAX_VIOLATIONS
    counts: dict[str, int] = field(default_factory=dict)  # rows checked, by what they are: {"orders": 5}
    figures: list[str] = field(default_factory=list)  # other facts for the summary: "total balance 10.00000"

    def add(self, text: str) -> None:
        if len(self.violations) < self.max_violations:
            self.violations.append(text)
        else:
            self.not_listed += 1

    def counted(self, what: str, number: int) -> None:
        self.counts[what] = number

    def note(self, figure: str) -> None:
        self.figures.append(figure)

    def __getattr__(self, name: str) -> int:
        # What a check counted, as an attribute: report.orders.
        counts = self.__dict__.get("counts", {})
        if name in counts:
            return int(counts[name])
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r} (and no check counted it)")

    @property
    def count(self) -> int:
        return len(self.violations) + self.not_listed

    @property
    def ok(self) -> bool:
        return self.count == 0

    def lines(self) -> list[str]:
        if self.not_listed:
            return [*self.violations, f"... and {self.not_listed} more violations not listed"]
        return list(self.violations)

    def summary(self) -> str:
        counted = ", ".join(f"{number} {what}" for what, number in self.counts.items())
        return "; ".join([*filter(None, [counted]), *self.figures, f"{self.count} violations"])


Check = Callable[[AuditReport], None]
_checks: list[Check] = []


def register(check: Check) -> Check:
    """Add a check to every audit run (once, however often an app's ready() runs)."""
    if check not in _checks:
        _checks.append(check)
    return check


def registered_checks() -> tuple[Check, ...]:
    return tuple(_checks)


def audit_run(*, checks: Iterable[Check] | None = None, max_violations: int = DEFAULT_MAX_VIOLATIONS) -> AuditReport:
    """Run the given checks (by default every registered one) in one read-only snapshot."""
    report = AuditReport(max_violations=max_violations)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for check in registered_checks() if checks is None else tuple(checks):
            check(report)
    return report
