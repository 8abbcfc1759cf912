from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from kernel.numbers import IdChoiceFilter, int_or_none

from .models import SERVICE_TYPE_CHOICES, Category, Service


class ServiceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    category = IdChoiceFilter(queryset=Category.objects.filter(is_enabled=True), empty_label=_("All categories"))
    type = django_filters.ChoiceFilter(choices=SERVICE_TYPE_CHOICES, empty_label=_("All types"))
    refill = django_filters.BooleanFilter(widget=django_filters.widgets.BooleanWidget())

    class Meta:
        model = Service
        fields = ("q", "category", "type", "refill")

    def search(self, queryset: QuerySet[Service], name: str, value: str) -> QuerySet[Service]:
        value = value.strip()[:100]
        if not value:
            return queryset
        condition = Q(name__icontains=value) | Q(category__name__icontains=value)
        number = int_or_none(value)
        if number is not None:
            condition |= Q(pk=number)
        return queryset.filter(condition)
