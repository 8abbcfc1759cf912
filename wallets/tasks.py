from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import mail_admins

from .audit import ledger_audit_run
from .reconcile import payments_reconcile, payments_sweep_pending

logger = logging.getLogger(__name__)
MAILED_LINES = 200


# Daily, from CELERY_BEAT_SCHEDULE. Read-only and idempotent; the limits bound a run over
# millions of orders (minutes) while never letting a stuck query hold a worker for ever.
@shared_task(soft_time_limit=45 * 60, time_limit=50 * 60)
def ledger_audit_daily() -> int:
    report = ledger_audit_run()
    if report.ok:
        logger.info("ledger audit OK: %s", report.summary())
        return 0
    logger.error("ledger audit FAILED: %s", report.summary())
    lines = report.lines()[:MAILED_LINES]
    more = report.count - len(lines)
    body = "\n".join([report.summary(), "", *lines, *([f"... and {more} more"] if more > 0 else [])])
    mail_admins(f"Ledger audit: {report.count} violations", body)
    return report.count


# Daily, from CELERY_BEAT_SCHEDULE. It lists and does not repair: staff read the mail and run
# `manage.py payments_reconcile --fix` (each repair goes through the settle or reverse path).
# Read-only here, so safe to run twice; the limits bound a gateway that answers slowly.
@shared_task(soft_time_limit=20 * 60, time_limit=25 * 60)
def payments_reconcile_daily(days: int = 3) -> int:
    result = payments_reconcile(days=days)
    if not result.findings and not result.errors:
        logger.info("payments reconciliation OK: %s", result.summary())
        return 0
    logger.error("payments reconciliation found differences: %s", result.summary())
    lines = result.lines()[:MAILED_LINES]
    body = "\n".join(
        [result.summary(), "", *lines, "", "Repair with: python manage.py payments_reconcile --days 3 --fix"]
    )
    mail_admins(f"Payments reconciliation: {len(result.findings)} difference(s)", body)
    return len(result.findings) + len(result.errors)


# Every few minutes, from CELERY_BEAT_SCHEDULE: hosted payments still pending are asked about
# (a lost notification is credited, an abandoned checkout fails). Bounded batch, idempotent.
@shared_task(soft_time_limit=4 * 60, time_limit=5 * 60)
def payments_sweep_pending_task() -> dict[str, int]:
    swept = payments_sweep_pending(
        ask_after=timedelta(minutes=float(getattr(settings, "WALLET_PENDING_ASK_AFTER_MINUTES", 15))),
        abandon_after=timedelta(hours=float(getattr(settings, "WALLET_PENDING_ABANDON_HOURS", 24))),
    )
    return dict(vars(swept))
