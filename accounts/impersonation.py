""" "Log in as" a customer: staff with `accounts.impersonate_user` see the panel as one
customer sees it. Every session is recorded (accounts.Impersonation); it never reaches a staff
account or a superuser, ends after IMPERSONATION_MINUTES, and while it lasts the money and
secret pages (add funds, API key, password, e-mail, two-factor) refuse to act
(ImpersonationMiddleware)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import login
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Impersonation, User

SESSION_KEY = "impersonation"
IMPERSONATION_MINUTES = 60
BACKEND = "django.contrib.auth.backends.ModelBackend"


class ImpersonationError(Exception):
    pass


def impersonation_allowed(*, staff: Any, customer: User) -> bool:
    return (
        getattr(staff, "is_staff", False)
        and staff.has_perm("accounts.impersonate_user")
        and staff.pk != customer.pk
        and not customer.is_staff
        and not customer.is_superuser
        and customer.is_active
    )


def impersonation_start(*, request: HttpRequest, customer: User) -> Impersonation:
    """Log this staff member in as `customer` in this browser, recorded."""
    staff = request.user
    if not isinstance(staff, User) or not impersonation_allowed(staff=staff, customer=customer):
        raise ImpersonationError(_("You may not log in as this account."))
    now = timezone.now()
    record = Impersonation.objects.create(
        staff=staff,
        customer=customer,
        expires_at=now + dt.timedelta(minutes=IMPERSONATION_MINUTES),
        ip=request.META.get("REMOTE_ADDR") or None,
    )
    login(request, customer, backend=BACKEND)  # a new session: nothing of the staff's is kept
    request.session[SESSION_KEY] = {
        "id": record.pk,
        "staff_id": staff.pk,
        "staff_name": staff.get_username(),
        "until": record.expires_at.isoformat(),
    }
    return record


def impersonation_of(request: HttpRequest) -> dict[str, Any] | None:
    session = getattr(request, "session", None)
    return session.get(SESSION_KEY) if session is not None else None


@transaction.atomic
def impersonation_end(*, record_id: int, how: str) -> Impersonation | None:
    record = Impersonation.objects.select_for_update().filter(pk=record_id, ended_at__isnull=True).first()
    if record is not None:
        record.ended_at = timezone.now()
        record.ended_how = how
        record.save(update_fields=["ended_at", "ended_how"])
    return record


def impersonation_stop(*, request: HttpRequest) -> User | None:
    """Back to the staff account that started it (logged in again); None when that account
    may no longer impersonate (then the session just ends)."""
    state = impersonation_of(request)
    if state is None:
        return None
    record = impersonation_end(record_id=state["id"], how=Impersonation.Ended.RETURNED)
    staff = User.objects.filter(pk=state["staff_id"], is_active=True, is_staff=True).first()
    if record is None or staff is None or record.staff_id != staff.pk:
        return None
    login(request, staff, backend=BACKEND)
    return staff
