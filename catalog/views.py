from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .favourites import MAX_FAVOURITES, TooManyFavourites, favourite_ids_for_user, favourite_toggle
from .filters import ServiceFilter
from .models import CustomRate, Service
from .platforms import platform_of
from .selectors import custom_rates_for_user, service_get_for_sale, service_list_with_quality, service_price_for_user

PER_PAGE = 200


@dataclass
class ServiceGroup:
    key: str
    name: str
    icon: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def _row(service: Service, *, user: Any, custom_rates: dict[int, CustomRate], favourites: set[int]) -> dict[str, Any]:
    return {
        "service": service,
        "price": service_price_for_user(service=service, user=user, custom_rates=custom_rates),
        "billing": service.billing,
        "favourite": service.pk in favourites,
        "icon": platform_of(service.category.name, service.name),
    }


@require_GET
def services(request: HttpRequest) -> HttpResponse:
    """The public price list, grouped by category (a customer's favourites first); a
    logged-in customer sees their own rates (custom or discounted)."""
    service_filter = ServiceFilter(request.GET, queryset=service_list_with_quality())
    user = request.user if request.user.is_authenticated else None
    custom_rates = custom_rates_for_user(user=user)  # type: ignore[arg-type]
    favourites = favourite_ids_for_user(user=request.user)  # type: ignore[arg-type]
    ordered = service_filter.qs.order_by("category__sort_order", "category__name", "category_id", "position", "id")
    page = Paginator(ordered, PER_PAGE).get_page(request.GET.get("page"))
    groups: list[ServiceGroup] = []
    starred = ServiceGroup(key="favourites", name=_("Favourites"), icon="star-fill")
    for service in page.object_list:
        row = _row(service, user=user, custom_rates=custom_rates, favourites=favourites)
        if row["favourite"]:
            starred.rows.append(row)
        if not groups or groups[-1].key != str(service.category_id):
            groups.append(ServiceGroup(key=str(service.category_id), name=service.category.name, icon=row["icon"]))
        groups[-1].rows.append(row)
    if starred.rows:
        groups.insert(0, starred)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filter": service_filter,
        "groups": groups,
        "page": page,
        "page_query": query.urlencode(),
        "count": page.paginator.count,
    }
    return render(request, "catalog/services.html", context)


@require_POST
@login_required
def favourite(request: HttpRequest, pk: int) -> HttpResponse:
    """Star or unstar a service on sale (POST with CSRF; each customer's own list)."""
    service = service_get_for_sale(pk=pk)
    if service is None:
        raise Http404
    user = request.user
    try:
        favourite_toggle(user=user, service=service)  # type: ignore[arg-type]
    except TooManyFavourites:
        messages.warning(request, _("You can keep at most %(count)s favourites.") % {"count": MAX_FAVOURITES})
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(reverse("catalog:services") + f"#service-{service.pk}")
