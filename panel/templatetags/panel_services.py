"""The services page's row cells, rendered in Python.

A page lists up to 200 services; an included template per cell cost the page most of its time
(hundreds of template renders a request), so the two cells every row has are built here.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from catalog.quality import is_measured
from catalog.templatetags.catalog_quality import duration
from kernel import protocol

from .panel_money import money, readable

register = template.Library()


def price_unit(billing: str) -> str:
    """What a rate is the price of, in the reader's language (kernel.protocol's units)."""
    return _(protocol.BILLING_UNITS.get(billing, protocol.BILLING_UNITS[protocol.BILL_PER_1000]))


@register.simple_tag(takes_context=True)
def price_cell(context: template.Context, price: Any, billing: str) -> SafeString:
    """The price with its unit (per 1000, per package, per 1000 per post)."""
    return format_html('{} <span class="price-unit">{}</span>', money(context, price), price_unit(billing))


@register.simple_tag
def quality_cell(figures: Any) -> SafeString:
    """A service's measured figures (30 days): start, per 1000, shares, sample size."""
    if not is_measured(figures or None):
        return format_html('<small class="text-body-secondary">{}</small>', _("Not measured yet"))
    return format_html(
        '<small class="quality-figures text-nowrap" data-sample="{}">{}<br>{}<br><span title="{}">{}</span></small>',
        figures.finished,
        _("starts in ~%(start)s") % {"start": duration(figures.start_p50)},
        _("1000 in ~%(time)s") % {"time": duration(figures.per1000_p50)},
        _("Partial %(partial)s%%, canceled %(canceled)s%%")
        % {"partial": readable(figures.partial_share, 1), "canceled": readable(figures.canceled_share, 1)},
        _("%(rate)s%% completed · %(sample)s orders")
        % {"rate": readable(figures.completed_share, 1), "sample": figures.finished},
    )


@register.simple_tag(takes_context=True)
def service_options(context: template.Context, services: list[dict[str, Any]], selected: str) -> SafeString:
    """The new-order page's service picker: an <optgroup> per category (in the order given)
    holding "id — name — price unit" options, the `selected` id chosen. One call for the
    whole list (a thousand services) instead of a template loop."""
    units = {billing: price_unit(billing) for billing in protocol.BILLING_UNITS}
    parts: list[str] = []
    category = None
    for s in services:
        if s["category"] != category:
            if category is not None:
                parts.append("</optgroup>")
            category = s["category"]
            parts.append(f'<optgroup label="{escape(category)}">')
        pk = str(s["id"])
        chosen = " selected" if pk == selected else ""
        price = money(context, s["rate"], plain=True)
        unit = units.get(s["billing"]) or price_unit(s["billing"])
        parts.append(
            f'<option value="{pk}"{chosen}>{pk} — {escape(s["name"])} — {escape(price)} {escape(unit)}</option>'
        )
    if category is not None:
        parts.append("</optgroup>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped


@register.simple_tag
def category_options(services: list[dict[str, Any]]) -> SafeString:
    """An <option> per category of `services`, in their order (the category filter)."""
    seen = dict.fromkeys(s["category"] for s in services)
    return format_html_join("", '<option value="{}">{}</option>', ((name, name) for name in seen))
