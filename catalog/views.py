from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tables2 import RequestConfig

from .filters import ServiceFilter
from .selectors import custom_rates_for_user, service_list_for_sale
from .tables import ServiceTable


def services(request: HttpRequest) -> HttpResponse:
    """The public price list; a logged-in customer sees their own rates (custom or discounted)."""
    service_filter = ServiceFilter(request.GET, queryset=service_list_for_sale().select_related("quality"))
    user = request.user if request.user.is_authenticated else None
    table = ServiceTable(
        service_filter.qs,
        user=user,  # type: ignore[arg-type]
        custom_rates=custom_rates_for_user(user=user),  # type: ignore[arg-type]
    )
    RequestConfig(request, paginate={"per_page": 100}).configure(table)
    return render(request, "catalog/services.html", {"filter": service_filter, "table": table})
