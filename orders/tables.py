"""Tables of the customer pages. Rows come from keyset pages, so nothing here sorts or
paginates (that would mean OFFSET and COUNT over the whole table)."""

from __future__ import annotations

import django_tables2 as tables

from .models import Order, Refill


class OrderTable(tables.Table):
    id = tables.Column(verbose_name="ID", linkify=("orders:detail", {"pk": tables.A("pk")}))
    created_at = tables.DateTimeColumn(verbose_name="Date", format="Y-m-d H:i")
    link = tables.TemplateColumn(template_name="orders/_link_cell.html")
    charge = tables.Column()
    start_count = tables.Column(verbose_name="Start count")
    quantity = tables.Column()
    service = tables.Column(accessor="service__name", verbose_name="Service", attrs={"td": {"class": "service-name"}})
    status = tables.TemplateColumn(template_name="orders/_status_cell.html")
    remains = tables.Column()
    actions = tables.TemplateColumn(template_name="orders/_actions_cell.html", verbose_name="", empty_values=())

    class Meta:
        model = Order
        fields = ("id", "created_at", "link", "charge", "start_count", "quantity", "service", "status", "remains")
        orderable = False
        # The columns above define the header; the rows are written out by this template.
        template_name = "orders/_orders_table.html"
        attrs = {"class": "table table-sm table-hover align-middle", "id": "orders-table"}
        empty_text = "No orders yet."


class RefillTable(tables.Table):
    id = tables.Column(verbose_name="ID")
    created_at = tables.DateTimeColumn(verbose_name="Date", format="Y-m-d H:i")
    order = tables.Column(
        verbose_name="Order", linkify=("orders:detail", {"pk": tables.A("order_id")}), accessor="order_id"
    )
    service = tables.Column(
        accessor="order__service__name", verbose_name="Service", attrs={"td": {"class": "service-name"}}
    )
    link = tables.TemplateColumn(template_name="orders/_link_cell.html", accessor="order__link")
    status = tables.Column()

    class Meta:
        model = Refill
        fields = ("id", "created_at", "order", "service", "link", "status")
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-hover align-middle", "id": "refills-table"}
        empty_text = "No refills yet."
