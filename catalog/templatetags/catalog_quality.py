"""Measured quality for reading: durations in words and whether figures are shown yet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import template
from django.utils.translation import gettext as _

from catalog.quality import is_measured

register = template.Library()


@register.filter
def duration(seconds: Any) -> str:
    """2 d 4 h, 3 h 10 min, 25 min, under a minute; — for nothing."""
    return duration_in(seconds, _)


def duration_in(seconds: Any, gettext: Callable[[str], str]) -> str:
    """`duration` with the given gettext (a list of many rows passes a memoised one)."""
    if seconds is None or seconds == "":
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return gettext("under a minute")
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        if hours:
            return gettext("%(days)s d %(hours)s h") % {"days": days, "hours": hours}
        return gettext("%(days)s d") % {"days": days}
    if hours:
        if minutes:
            return gettext("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
        return gettext("%(hours)s h") % {"hours": hours}
    return gettext("%(minutes)s min") % {"minutes": minutes}


@register.filter
def seconds_after(end: datetime | None, start: datetime | None) -> int | None:
    if end is None or start is None:
        return None
    return max(0, int((end - start).total_seconds()))


@register.filter
def measured(figures: Any) -> bool:
    return is_measured(figures or None)
