from __future__ import annotations

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Entry


class EntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Entry.Kind.choices, empty_label=_("All kinds"))
    date_from = django_filters.DateFilter(
        field_name="created_at__date",
        lookup_expr="gte",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        field_name="created_at__date", lookup_expr="lte", label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = Entry
        fields = ["kind", "date_from", "date_to"]
