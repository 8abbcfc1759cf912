"""Tables of the customer pages. Rows come from keyset pages, so nothing here sorts or
paginates (that would mean OFFSET and COUNT over the whole table)."""

from __future__ import annotations

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from .models import Order, Refill


class OrderTable(tables.Table):
    # The first column is the card's title on phones; the ID heads the desktop table.
    card = tables.Column(empty_values=(), verbose_name="", attrs={"th": {"class": "d-md-none"}})
    id = tables.Column(
        verbose_name=_("ID"),
        linkify=("orders:detail", {"pk": tables.A("pk")}),
        attrs={"th": {"class": "d-none d-md-table-cell"}},
    )
    created_at = tables.DateTimeColumn(verbose_name=_("Date"), format="Y-m-d H:i")
    link = tables.TemplateColumn(template_name="orders/_link_cell.html", verbose_name=_("Link"))
    charge = tables.Column(verbose_name=_("Charge"))
    start_count = tables.Column(verbose_name=_("Start count"))
    quantity = tables.Column(verbose_name=_("Quantity"))
    service = tables.Column(
        accessor="service__name", verbose_name=_("Service"), attrs={"th": {"class": "d-none d-md-table-cell"}}
    )
    status = tables.TemplateColumn(template_name="orders/_status_cell.html", verbose_name=_("Status"))
    remains = tables.Column(verbose_name=_("Remains"))
    actions = tables.TemplateColumn(template_name="orders/_actions_cell.html", verbose_name="", empty_values=())

    class Meta:
        model = Order
        fields = (
            "card",
            "id",
            "created_at",
            "link",
            "charge",
            "start_count",
            "quantity",
            "service",
            "status",
            "remains",
        )
        orderable = False
        # The columns above define the header; the rows are written out by this template.
        template_name = "orders/_orders_table.html"
        attrs = {"class": "table table-sm table-hover align-middle table-cards", "id": "orders-table"}
        empty_text = _("No orders yet.")


class RefillTable(tables.Table):
    service = tables.Column(
        accessor="order__service__name",
        verbose_name=_("Service"),
        attrs={"td": {"class": "service-name card-title-cell", "data-i18n-skip": ""}},
    )
    id = tables.Column(verbose_name=_("ID"))
    created_at = tables.DateTimeColumn(verbose_name=_("Date"), format="Y-m-d H:i")
    order = tables.Column(
        verbose_name=_("Order"), linkify=("orders:detail", {"pk": tables.A("order_id")}), accessor="order_id"
    )
    link = tables.TemplateColumn(template_name="orders/_link_cell.html", accessor="order__link", verbose_name=_("Link"))
    status = tables.Column(verbose_name=_("Status"))

    class Meta:
        model = Refill
        fields = ("service", "id", "created_at", "order", "link", "status")
        orderable = False
        template_name = "includes/table_cards.html"
        attrs = {"class": "table table-sm table-hover align-middle table-cards", "id": "refills-table"}
        empty_text = _("No refills yet.")
