from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import Entry

# The ledger shows exact amounts (every stored place) in the panel's currency.
SIGNED = (
    '{% load panel_money %}<span class="{% if value > 0 %}text-success{% else %}text-danger{% endif %}">'
    "{% if value > 0 %}+{% endif %}{% money value exact=True %}</span>"
)
EXACT = "{% load panel_money %}{% money value exact=True %}"


class EntryTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name=_("Date"), format="Y-m-d H:i:s")
    kind = tables.Column(verbose_name=_("Kind"))
    amount = tables.TemplateColumn(
        SIGNED, verbose_name=_("Amount"), attrs={"td": {"class": "text-end"}, "th": {"class": "text-end"}}
    )
    balance_after = tables.TemplateColumn(
        EXACT, verbose_name=_("Balance after"), attrs={"td": {"class": "text-end"}, "th": {"class": "text-end"}}
    )
    memo = tables.Column(verbose_name=_("Details"), default="")

    class Meta:
        model = Entry
        fields = ("created_at", "kind", "amount", "balance_after", "memo")
        orderable = False
        template_name = "includes/table_cards.html"
        attrs = {"class": "table table-sm table-striped align-middle table-cards", "id": "transactions-table"}
        empty_text = _("No transactions yet.")

    def render_memo(self, record: Entry, value: str) -> str:
        # A chargeback the balance could not cover moves debt, not (only) the balance.
        if record.owed > 0:
            return format_html(
                '{} <span class="text-danger">({})</span>',
                value,
                _("%(amount)s owed") % {"amount": f"{record.owed:.2f}"},
            )
        if record.owed < 0:
            return format_html(
                "{} ({})", value, _("%(amount)s of what was owed paid") % {"amount": f"{-record.owed:.2f}"}
            )
        return value
