from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_tables2 as tables
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.models import User

from .models import CustomRate, Service
from .selectors import service_price_for_user


class ServiceTable(tables.Table):
    id = tables.Column(verbose_name="ID")
    name = tables.Column(verbose_name="Service", attrs={"td": {"class": "service-name"}})
    category = tables.Column(accessor="category__name", verbose_name="Category")
    price = tables.Column(verbose_name="Rate", attrs={"td": {"class": "text-nowrap"}})
    min_quantity = tables.Column(verbose_name="Min")
    max_quantity = tables.Column(verbose_name="Max")
    quality = tables.TemplateColumn(
        template_name="catalog/_quality.html", orderable=False, verbose_name=_("Measured (30 days)")
    )
    badges = tables.Column(empty_values=(), orderable=False, verbose_name="")
    description = tables.Column(orderable=False, verbose_name="Description")

    class Meta:
        model = Service
        fields = (
            "id",
            "name",
            "category",
            "price",
            "min_quantity",
            "max_quantity",
            "quality",
            "badges",
            "description",
        )
        attrs = {"class": "table table-sm table-striped align-middle", "id": "services-table"}
        # No default sort: the queryset's order is staff's (category order, then position).

    def __init__(
        self, *args: Any, user: User | None = None, custom_rates: dict[int, CustomRate] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.custom_rates = custom_rates or {}

    def render_price(self, value: Decimal, record: Service) -> str:
        price = service_price_for_user(service=record, user=self.user, custom_rates=self.custom_rates).normalize()
        return format_html('{} <small class="text-body-secondary">{}</small>', f"{price:f}", record.billing_label)

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
