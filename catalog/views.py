from __future__ import annotations

from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_tables2 import RequestConfig

from .filters import ServiceFilter
from .selectors import service_list_for_sale
from .tables import ServiceTable


def services(request: HttpRequest) -> HttpResponse:
    """The public price list; a logged-in customer sees their own discounted rates."""
    service_filter = ServiceFilter(request.GET, queryset=service_list_for_sale().select_related("quality"))
    user = request.user
    discount = user.discount_percent if user.is_authenticated else Decimal("0")  # type: ignore[union-attr]
    table = ServiceTable(service_filter.qs, discount_percent=discount)
    RequestConfig(request, paginate={"per_page": 100}).configure(table)
    return render(request, "catalog/services.html", {"filter": service_filter, "table": table})
