from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag
def active_nav_url(nav_items: list[tuple[str, str]], path: str) -> str:
    """The navigation entry the page belongs to: the longest entry URL that starts the path."""
    best = ""
    for _label, url in nav_items:
        if url != "/" and path.startswith(url) and len(url) > len(best):
            best = url
    return best
