"""Measured quality for reading: durations in words and whether figures are shown yet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils.translation import gettext as _

from catalog.quality import is_measured

register = template.Library()


@register.filter
def duration(seconds: Any) -> str:
    """2 d 4 h, 3 h 10 min, 25 min, under a minute; — for nothing."""
    if seconds is None or seconds == "":
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return _("under a minute")
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return (
            _("%(days)s d %(hours)s h") % {"days": days, "hours": hours} if hours else _("%(days)s d") % {"days": days}
        )
    if hours:
        return (
            _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
            if minutes
            else _("%(hours)s h") % {"hours": hours}
        )
    return _("%(minutes)s min") % {"minutes": minutes}


@register.filter
def seconds_after(end: datetime | None, start: datetime | None) -> int | None:
    if end is None or start is None:
        return None
    return max(0, int((end - start).total_seconds()))


@register.filter
def measured(figures: Any) -> bool:
    return is_measured(figures or None)
