"""Upstream names and descriptions that changed at a sync, for staff to review: accepting
copies the new text into the service sold through that upstream service; dismissing keeps
the service's own text. Nothing public changes without a person deciding."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from providers.models import UpstreamService

from .models import Route, Service, TextChange

FIELDS = ("name", "description")


def text_changes_record(*, before: Mapping[int, dict[str, str]], rows: Iterable[UpstreamService]) -> int:
    """Record the changed texts of upstream services that something is sold through.

    `before` maps an upstream service id to its texts before the sync; `rows` are the
    updated rows. One query finds the routes; one inserts the changes."""
    changed: dict[int, list[tuple[str, str, str]]] = {}
    for row in rows:
        old = before.get(row.pk)
        if old is None:
            continue
        diffs = [(f, old[f], getattr(row, f)) for f in FIELDS if old[f] != getattr(row, f)]
        if diffs:
            changed[row.pk] = diffs
    if not changed:
        return 0
    new = [
        TextChange(service_id=service_id, upstream_id=upstream_id, field=f, old_text=old_text, new_text=new_text)
        for service_id, upstream_id in Route.objects.filter(upstream_id__in=list(changed)).values_list(
            "service_id", "upstream_id"
        )
        for f, old_text, new_text in changed[upstream_id]
    ]
    TextChange.objects.bulk_create(new, batch_size=1000)
    return len(new)


def _decide(*, change_id: int, actor: User, status: str) -> TextChange | None:
    change = TextChange.objects.select_for_update().filter(pk=change_id, status=TextChange.Status.PENDING).first()
    if change is None:
        return None  # decided already: a second click changes nothing
    change.status = status
    change.decided_by = actor
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_by", "decided_at"])
    return change


@transaction.atomic
def text_change_accept(*, change_id: int, actor: User) -> bool:
    change = _decide(change_id=change_id, actor=actor, status=TextChange.Status.ACCEPTED)
    if change is None:
        return False
    Service.objects.filter(pk=change.service_id).update(
        **{change.field: change.new_text[:500] if change.field == "name" else change.new_text}
    )
    return True


@transaction.atomic
def text_change_dismiss(*, change_id: int, actor: User) -> bool:
    return _decide(change_id=change_id, actor=actor, status=TextChange.Status.DISMISSED) is not None
