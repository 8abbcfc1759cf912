"""The services page's rows and the new-order page's picker, rendered in Python.

A page lists up to 200 services (the picker a thousand); a template loop over them cost the
page most of its time (thousands of variable and tag renders a request), so each row is one
`format_html` here, every piece of text escaped by it.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from catalog.quality import is_measured, quality_of
from catalog.templatetags.catalog_quality import duration_in
from kernel import protocol

from .panel_money import money, readable

register = template.Library()


def price_unit(billing: str) -> str:
    """What a rate is the price of, in the reader's language (kernel.protocol's units)."""
    return _(protocol.BILLING_UNITS.get(billing, protocol.BILLING_UNITS[protocol.BILL_PER_1000]))


def quality_cell(figures: Any, gettext: Callable[[str], str] = _) -> SafeString:
    """A service's measured figures (30 days): start, per 1000, shares, sample size."""
    if not is_measured(figures or None):
        return format_html('<small class="text-body-secondary">{}</small>', gettext("Not measured yet"))
    return format_html(
        '<small class="quality-figures text-nowrap" data-sample="{}">{}<br>{}<br><span title="{}">{}</span></small>',
        figures.finished,
        gettext("starts in ~%(start)s") % {"start": duration_in(figures.start_p50, gettext)},
        gettext("1000 in ~%(time)s") % {"time": duration_in(figures.per1000_p50, gettext)},
        gettext("Partial %(partial)s%%, canceled %(canceled)s%%")
        % {"partial": readable(figures.partial_share, 1), "canceled": readable(figures.canceled_share, 1)},
        gettext("%(rate)s%% completed · %(sample)s orders")
        % {"rate": readable(figures.completed_share, 1), "sample": figures.finished},
    )


@register.simple_tag(takes_context=True)
def service_options(context: template.Context, services: list[dict[str, Any]], selected: str) -> SafeString:
    """The new-order page's service picker: an <optgroup> per category (in the order given)
    holding "id — name — price unit" options, the `selected` id chosen. One call for the
    whole list (a thousand services) instead of a template loop."""
    # html.escape is what Django's escape() calls, without its check for lazy text (every
    # value here is a plain str); a unit and a price are escaped once however many share them.
    units = {billing: html.escape(price_unit(billing)) for billing in protocol.BILLING_UNITS}
    prices: dict[str, str] = {}
    parts: list[str] = []
    category = None
    for s in services:
        if s["category"] != category:
            if category is not None:
                parts.append("</optgroup>")
            category = s["category"]
            parts.append(f'<optgroup label="{html.escape(str(category))}">')
        pk = str(s["id"])
        chosen = " selected" if pk == selected else ""
        price = prices.get(s["rate"])
        if price is None:
            price = prices[s["rate"]] = html.escape(money(context, s["rate"], plain=True))
        unit = units.get(s["billing"]) or html.escape(price_unit(s["billing"]))
        parts.append(f'<option value="{pk}"{chosen}>{pk} — {html.escape(str(s["name"]))} — {price} {unit}</option>')
    if category is not None:
        parts.append("</optgroup>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped


@register.simple_tag
def category_options(services: list[dict[str, Any]]) -> SafeString:
    """An <option> per category of `services`, in their order (the category filter)."""
    seen = dict.fromkeys(s["category"] for s in services)
    return format_html_join("", '<option value="{}">{}</option>', ((name, name) for name in seen))


_ROW = (
    '<tr class="service-row"{}>'
    '<td class="card-title-cell service-name d-md-none"><span class="text-body-secondary fw-normal small">#{}</span>'
    " <span data-i18n-skip>{}</span></td>"
    '<td class="text-center fav-cell">{}</td>'
    '<td class="text-body-secondary d-none d-md-table-cell">{}</td>'
    '<td class="service-name badges-cell{}"><span class="d-none d-md-inline fw-medium" data-i18n-skip>{}</span>{}{}</td>'
    '<td class="text-nowrap" data-label="{}"><span>{}</span></td>'
    '<td class="text-nowrap" data-label="{}"><span>{}</span></td>'
    '<td data-label="{}">{}</td>'
    '<td class="text-end order-cell"><a class="btn btn-sm btn-primary text-nowrap" href="{}?service={}" data-order="{}">'
    '<i class="bi bi-cart-plus" aria-hidden="true"></i> {}</a></td>'
    "</tr>"
)
# The star is a button of the page's one favourite form (FAVOURITE_FORM), posting to its row's
# own address: a row carries no token of its own.
FAVOURITE_FORM = "favourite-form"
_PK_MARK = 9_876_543_210
_STAR = (
    '<button type="submit" form="{}" formaction="{}" class="fav-btn" aria-pressed="{}" title="{}" data-favourite="{}">'
    '<i class="bi bi-star{}" aria-hidden="true"></i><span class="visually-hidden">{}</span></button>'
)


@register.simple_tag(takes_context=True)
def service_rows(context: template.Context, rows: list[dict[str, Any]], anchors: bool = True) -> SafeString:
    """The <tr> of each service of a group (catalog.views rows: service, price, billing,
    favourite); `anchors` gives each row its `service-<id>` id (not in the favourites group,
    whose services appear again below)."""
    signed_in = context["user"].is_authenticated
    # The same few sentences on every row: each looked up once.
    gettext = functools.cache(_)
    labels = {
        "rate": _("Rate"),
        "limits": _("Min / max"),
        "measured": _("Measured (30 days)"),
        "order": _("Order"),
        "one_package": _("1 package"),
        "per_post": _("per post"),
        "remove": _("Remove from favourites"),
        "add": _("Add to favourites"),
    }
    badges = (
        ("refill", format_html('<span class="badge text-bg-success">{}</span>', _("Refill"))),
        ("cancel", format_html('<span class="badge text-bg-warning">{}</span>', _("Cancel"))),
        ("dripfeed", format_html('<span class="badge text-bg-info">{}</span>', _("Drip-feed"))),
    )
    units = {billing: price_unit(billing) for billing in protocol.BILLING_UNITS}
    new_order_url = reverse("orders:new")
    # One reverse() for the page: each row's address is the pattern with its id put in.
    favourite_url = reverse("catalog:favourite", args=[_PK_MARK])
    parts: list[str] = []
    for row in rows:
        s = row["service"]
        pk = str(s.pk)
        if signed_in:
            label = labels["remove"] if row["favourite"] else labels["add"]
            star: str = format_html(
                _STAR,
                FAVOURITE_FORM,
                favourite_url.replace(str(_PK_MARK), pk),
                "true" if row["favourite"] else "false",
                label,
                pk,
                "-fill" if row["favourite"] else "",
                label,
            )
        else:
            star = '<span class="text-body-secondary">—</span>'
        flags = mark_safe("".join(str(badge) for name, badge in badges if getattr(s, name)))  # noqa: S308 - built by format_html
        description = ""
        if s.description:
            text = Truncator(s.description)
            description = format_html(
                '<div class="service-desc d-none d-md-block" data-i18n-skip title="{}">{}</div>',
                text.chars(500),
                text.chars(160),
            )
        billing = row["billing"]
        if billing == protocol.BILL_PER_PACKAGE:
            limits: str = labels["one_package"]
        else:
            limits = format_html("{} – {}", s.min_quantity, s.max_quantity)
            if billing == protocol.BILL_PER_1000_PER_POST:
                limits = format_html('{} <span class="price-unit">{}</span>', limits, labels["per_post"])
        parts.append(
            format_html(
                _ROW,
                format_html(' id="service-{}"', pk) if anchors else "",
                pk,
                s.name,
                mark_safe(star),  # noqa: S308 - built by format_html above
                pk,
                "" if flags else " cell-empty-phone",
                s.name,
                flags,
                description,
                labels["rate"],
                format_html('{} <span class="price-unit">{}</span>', money(context, row["price"]), units[billing]),
                labels["limits"],
                limits,
                labels["measured"],
                quality_cell(quality_of(s), gettext),
                new_order_url,
                pk,
                pk,
                labels["order"],
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 - each row is format_html's
