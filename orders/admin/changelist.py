"""The order list's filters and its keyset pages ("Older orders"), for orders.py's OrderAdmin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from kernel.numbers import int_or_none


class CustomerFilter(admin.SimpleListFilter):
    """A text box (username, e-mail or id), not a list of every customer."""

    title = "customer"
    parameter_name = "customer"
    template = "orders/admin_input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # the filter only shows when it has lookups

    def choices(self, changelist: Any) -> Any:
        others = []
        for name, values in changelist.get_filters_params().items():
            if name == self.parameter_name:
                continue
            for value in values if isinstance(values, list) else [values]:
                others.append((name, value))
        yield {"value": self.value() or "", "parameter_name": self.parameter_name, "others": others}

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if "\x00" in value:
            raise IncorrectLookupParameters("customer= cannot hold a NUL byte")
        condition = Q(user__username=value) | Q(user__email__iexact=value)
        number = int_or_none(value)
        if number is not None:
            condition |= Q(user_id=number)
        return queryset.filter(condition)


class OlderThanFilter(admin.SimpleListFilter):
    """`?before=<order id>`: the orders older than that one. The list's "Older orders" link
    uses it, so going deep is an index range read, not an OFFSET that walks every skipped
    row (page 10,000 by number reads half a million index entries). Not shown in the
    sidebar (an empty template)."""

    title = "older than"
    parameter_name = "before"
    template = "orders/admin_hidden_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def has_output(self) -> bool:
        return True  # else the changelist drops the filter and its queryset() never runs

    def choices(self, changelist: Any) -> Any:
        return []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        before = int_or_none(value)
        if before is None:
            raise IncorrectLookupParameters(f"before={value!r} is not an order id")
        return queryset.filter(pk__lt=before)


class OrderChangeList(ChangeList):
    """Adds "Older orders" / "Newest orders" links (keyset pages) while the list is in its
    default newest-first order."""

    older_url: str | None = None
    newest_url: str | None = None

    # What the rows show: a page of fifty reads these columns only, not the orders' forty,
    # the services' descriptions or the providers' settings (actions and each order's own
    # page read whole rows).
    LIST_COLUMNS = (
        "id",
        "created_at",
        "status",
        "state",
        "charge",
        "quantity",
        "remains",
        "sync_flag",
        "user",
        "user__username",
        "service",
        "service__name",
        "provider",
        "provider__name",
    )

    def get_results(self, request: HttpRequest) -> None:
        self.queryset = self.queryset.only(*self.LIST_COLUMNS)
        super().get_results(request)
        if ORDER_VAR in self.params:
            return
        rows = list(self.result_list)
        if len(rows) == self.list_per_page:
            self.older_url = self.get_query_string({OlderThanFilter.parameter_name: rows[-1].pk}, [PAGE_VAR])
        if OlderThanFilter.parameter_name in self.params:
            self.newest_url = self.get_query_string(remove=[OlderThanFilter.parameter_name, PAGE_VAR])
