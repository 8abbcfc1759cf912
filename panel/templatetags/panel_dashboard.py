from __future__ import annotations

from typing import Any

from django import template

from panel import dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def panel_dashboard(context: template.Context) -> dict[str, Any] | None:
    """The staff dashboard's data, for the admin index (staff only)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return None
    stats = dashboard.dashboard_stats()
    bars, top = dashboard.chart_bars(days=stats.days)
    attention = dashboard.dashboard_attention()
    return {
        "attention": attention,
        "attention_total": sum(item.count for item in attention),
        "stats": stats,
        "bars": bars,
        "top": top,
    }
