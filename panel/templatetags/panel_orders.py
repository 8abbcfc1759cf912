"""Order words for people: a status by its translated label."""

from __future__ import annotations

from django import template

from orders.models import Status

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    """The translated label of an order status; an unknown value is shown as it is."""
    try:
        return str(Status(status).label)
    except ValueError:
        return status
