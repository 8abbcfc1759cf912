from __future__ import annotations

from decimal import Decimal

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from .models import Entry, Payment


def _signed(value: Decimal) -> str:
    css = "text-success" if value > 0 else "text-danger"
    return format_html('<span class="{}">{}{}</span>', css, "+" if value > 0 else "", value)


class EntryTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name="Date", format="Y-m-d H:i:s")
    kind = tables.Column()
    amount = tables.Column(attrs={"td": {"class": "text-end font-monospace"}, "th": {"class": "text-end"}})
    balance_after = tables.Column(
        verbose_name="Balance after", attrs={"td": {"class": "text-end font-monospace"}, "th": {"class": "text-end"}}
    )
    memo = tables.Column(verbose_name="Details", default="")

    class Meta:
        model = Entry
        fields = ("created_at", "kind", "amount", "balance_after", "memo")
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-striped align-middle"}
        empty_text = "No transactions yet."

    def render_amount(self, value: Decimal) -> str:
        return _signed(value)


class PaymentTable(tables.Table):
    id = tables.Column(verbose_name="#")
    created_at = tables.DateTimeColumn(verbose_name="Date", format="Y-m-d H:i")
    gateway = tables.Column(verbose_name="Method")
    amount = tables.Column(attrs={"td": {"class": "text-end font-monospace"}, "th": {"class": "text-end"}})
    status = tables.Column()

    class Meta:
        model = Payment
        fields = ("id", "created_at", "gateway", "amount", "status")
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-striped align-middle"}
        empty_text = "No payments yet."

    def render_id(self, value: int) -> str:
        return format_html('<a href="{}">{}</a>', reverse("wallets:payment_detail", args=[value]), value)

    def render_status(self, record: Payment) -> str:
        css = {"paid": "success", "pending": "warning", "failed": "secondary", "refunded": "info"}[record.status]
        return format_html('<span class="badge text-bg-{}">{}</span>', css, record.get_status_display())
