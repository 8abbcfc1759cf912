"""Reads for webhook pages: access selectors 404 for anyone but the owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Delivery, Endpoint, Event

if TYPE_CHECKING:
    from accounts.models import User


def endpoint_for_user(*, user: User) -> Endpoint | None:
    return Endpoint.objects.filter(user=user).first()


def event_get_for_user(*, user: User, event_id: str) -> Event:
    return get_object_or_404(Event, event_id=event_id, endpoint__user=user)


def deliveries_for_user(*, user: User, limit: int = 50, before: int | None = None) -> QuerySet[Delivery]:
    rows = Delivery.objects.filter(endpoint__user=user).select_related("event").order_by("-id")
    if before is not None:
        rows = rows.filter(id__lt=before)
    return rows[:limit]


def events_for_user(*, user: User, limit: int = 50) -> QuerySet[Event]:
    return Event.objects.filter(endpoint__user=user).order_by("-id")[:limit]
