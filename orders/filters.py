from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from .models import Order, Status
from .selectors import order_search


class OrderFilter(django_filters.FilterSet):
    """The orders list's status tab and search box (by order id or link)."""

    status = django_filters.ChoiceFilter(choices=Status.choices, empty_label=_("All"), widget=forms.HiddenInput)
    q = django_filters.CharFilter(
        method="search",
        label=_("Search"),
        max_length=200,
        widget=forms.TextInput(attrs={"class": "form-control", "placeholder": _("Order ID or link"), "type": "search"}),
    )

    class Meta:
        model = Order
        fields: list[str] = []

    def search(self, queryset: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        return order_search(queryset, text=value)
