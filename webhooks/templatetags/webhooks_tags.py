"""`{% webhooks_section as hook %}`: what the API page's webhook section shows, loaded by the
section itself so the page's own view needs no change."""

from __future__ import annotations

from typing import Any

from django import template

from ..forms import EndpointForm
from ..selectors import deliveries_for_user, endpoint_for_user

register = template.Library()


@register.simple_tag(takes_context=True)
def webhooks_section(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    endpoint = endpoint_for_user(user=user)
    return {
        "endpoint": endpoint,
        "form": EndpointForm(initial={"url": endpoint.url if endpoint else ""}),
        "deliveries": list(deliveries_for_user(user=user, limit=5)) if endpoint else [],
    }
