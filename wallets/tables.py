from __future__ import annotations

from decimal import Decimal

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import Entry


def _signed(value: Decimal) -> str:
    css = "text-success" if value > 0 else "text-danger"
    return format_html('<span class="{}">{}{}</span>', css, "+" if value > 0 else "", value)


class EntryTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name=_("Date"), format="Y-m-d H:i:s")
    kind = tables.Column(verbose_name=_("Kind"))
    amount = tables.Column(
        verbose_name=_("Amount"), attrs={"td": {"class": "text-end font-monospace"}, "th": {"class": "text-end"}}
    )
    balance_after = tables.Column(
        verbose_name=_("Balance after"), attrs={"td": {"class": "text-end font-monospace"}, "th": {"class": "text-end"}}
    )
    memo = tables.Column(verbose_name=_("Details"), default="")

    class Meta:
        model = Entry
        fields = ("created_at", "kind", "amount", "balance_after", "memo")
        orderable = False
        template_name = "django_tables2/bootstrap5.html"
        attrs = {"class": "table table-sm table-striped align-middle"}
        empty_text = _("No transactions yet.")

    def render_amount(self, value: Decimal) -> str:
        return _signed(value)

    def render_memo(self, record: Entry, value: str) -> str:
        # A chargeback the balance could not cover moves debt, not (only) the balance.
        if record.owed > 0:
            return format_html('{} <span class="text-danger">({} owed)</span>', value, f"{record.owed:.2f}")
        if record.owed < 0:
            return format_html("{} ({} of what was owed paid)", value, f"{-record.owed:.2f}")
        return value
