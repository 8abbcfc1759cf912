from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from kernel.numbers import int_or_none

from .models import Kind, OrderAction
from .services import MAX_ORDER_IDS


class TicketForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=200)
    kind = forms.ChoiceField(label=_("About"), choices=Kind.choices, initial=Kind.ORDER)
    order_action = forms.ChoiceField(
        label=_("Request"), choices=[("", _("Choose…")), *OrderAction.choices], required=False
    )
    order_ids = forms.CharField(
        label=_("Order IDs"),
        required=False,
        max_length=1000,
        help_text=_("One or more of your order IDs, separated by commas or spaces."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": _("e.g. 1042, 1043")}),
    )
    message = forms.CharField(label=_("Message"), max_length=10000, widget=forms.Textarea(attrs={"rows": 6}))

    def clean_order_ids(self) -> list[int]:
        raw = self.cleaned_data.get("order_ids", "").replace("#", " ")
        parts = [p for p in re.split(r"[\s,;]+", raw) if p]
        numbers = [int_or_none(p) for p in parts]
        if None in numbers:
            raise forms.ValidationError(_("Use order numbers only, e.g. 1042, 1043."))
        ids = list(dict.fromkeys(n for n in numbers if n is not None))
        if len(ids) > MAX_ORDER_IDS:
            raise forms.ValidationError(_("Name at most %(limit)s orders.") % {"limit": MAX_ORDER_IDS})
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == Kind.ORDER:
            if not data.get("order_action"):
                self.add_error("order_action", _("Choose what you need for these orders."))
            if "order_ids" in data and not data["order_ids"]:
                self.add_error("order_ids", _("Name the orders the ticket is about."))
        return data


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Your reply"), max_length=10000, widget=forms.Textarea(attrs={"rows": 4}))
