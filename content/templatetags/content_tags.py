from __future__ import annotations

from typing import Any

from django import template

from kernel.numbers import int_or_none

from ..selectors import announcement_current

register = template.Library()

# The id of the announcement a visitor closed, remembered by static/announcement.js.
DISMISSED_COOKIE = "announcement_dismissed"


@register.inclusion_tag("includes/_announcement_banner.html", takes_context=True)
def announcement_banner(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    post = announcement_current()
    if post is not None and request is not None and int_or_none(request.COOKIES.get(DISMISSED_COOKIE)) == post.pk:
        post = None
    return {"announcement": post, "cookie_name": DISMISSED_COOKIE}
