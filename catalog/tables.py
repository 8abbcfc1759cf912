from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_tables2 as tables
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .models import Service
from .pricing import price_for_customer


class ServiceTable(tables.Table):
    id = tables.Column(verbose_name=_("ID"))
    name = tables.Column(verbose_name=_("Service"), attrs={"td": {"class": "service-name"}})
    category = tables.Column(accessor="category__name", verbose_name=_("Category"))
    price = tables.Column(verbose_name=_("Rate"), attrs={"td": {"class": "text-nowrap"}})
    min_quantity = tables.Column(verbose_name=_("Min"))
    max_quantity = tables.Column(verbose_name=_("Max"))
    average_time_minutes = tables.Column(verbose_name=_("Average time"), default="—")
    badges = tables.Column(empty_values=(), orderable=False, verbose_name="")
    description = tables.Column(orderable=False, verbose_name=_("Description"))

    class Meta:
        model = Service
        fields = (
            "id",
            "name",
            "category",
            "price",
            "min_quantity",
            "max_quantity",
            "average_time_minutes",
            "badges",
            "description",
        )
        attrs = {"class": "table table-sm table-striped align-middle", "id": "services-table"}
        order_by = ("category", "id")

    def __init__(self, *args: Any, discount_percent: Decimal = Decimal("0"), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.discount_percent = discount_percent

    def render_price(self, value: Decimal, record: Service) -> str:
        price = price_for_customer(price=value, discount_percent=self.discount_percent).normalize()
        return format_html('{} <small class="text-body-secondary">{}</small>', f"{price:f}", record.billing_label)

    def render_average_time_minutes(self, value: int) -> str:
        hours, minutes = divmod(value, 60)
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"

    def render_badges(self, record: Service) -> str:
        flags = [
            ("Refill", record.refill, "success"),
            ("Cancel", record.cancel, "warning"),
            ("Drip-feed", record.dripfeed, "info"),
        ]
        return (
            format_html_join(
                "", '<span class="badge text-bg-{}">{}</span>', ((color, label) for label, on, color in flags if on)
            )
            or ""
        )

    def render_description(self, value: str) -> str:
        # Upstream text is untrusted: escaped by format_html, line breaks kept.
        return format_html('<small class="text-body-secondary" style="white-space: pre-line">{}</small>', value[:500])
