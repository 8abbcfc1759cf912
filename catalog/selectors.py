from __future__ import annotations

from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from kernel.db import fetch_joined, first_or_none
from providers.models import Provider, UpstreamService

from .models import Category, Route, Service
from .pricing import price_for_customer


def service_price_for_user(*, service: Service, user: User | None) -> Decimal:
    """Price per 1000 this customer pays (their discount applied)."""
    discount = user.discount_percent if user is not None and user.is_authenticated else Decimal("0")
    return price_for_customer(price=service.price, discount_percent=discount)


def service_list_for_sale() -> QuerySet[Service]:
    return Service.objects.filter(is_enabled=True, category__is_enabled=True).select_related("category")


def service_get_for_sale(*, pk: int) -> Service | None:
    return first_or_none(service_list_for_sale().filter(pk=pk))


def _usable_routes() -> QuerySet[Route]:
    return Route.objects.filter(is_enabled=True, upstream__is_removed=False, upstream__provider__is_enabled=True)


def service_routes(*, service: Service | int) -> list[Route]:
    """Enabled routes whose provider can take orders, best first (of a service or service id)."""
    return list(
        _usable_routes().filter(service=service).select_related("upstream__provider").order_by("priority", "id")
    )


def service_for_sale_with_routes(*, pk: int) -> tuple[Service | None, list[Route]]:
    """A service on sale and its usable routes, best first, in one query when it has routes
    (placing an order needs both); a second query only tells an unsellable service from one
    without routes.

    The query is _usable_routes() with the service on sale, written out (kernel.db.fetch_joined):
    compiling it with its four joins cost more than running it, on every order placed."""
    rows = fetch_joined(
        [(Route, "r"), (Service, "s"), (Category, "c"), (UpstreamService, "us"), (Provider, "p")],
        "FROM catalog_route r JOIN catalog_service s ON s.id = r.service_id "
        "JOIN catalog_category c ON c.id = s.category_id "
        "JOIN providers_upstreamservice us ON us.id = r.upstream_id "
        "JOIN providers_provider p ON p.id = us.provider_id "
        "WHERE r.service_id = %s AND r.is_enabled = %s AND us.is_removed = %s AND p.is_enabled = %s "
        "AND s.is_enabled = %s AND c.is_enabled = %s ORDER BY r.priority, r.id",
        [pk, True, False, True, True, True],
    )
    if not rows:
        return service_get_for_sale(pk=pk), []
    service = rows[0][1]
    assert isinstance(service, Service)
    service.category = rows[0][2]  # type: ignore[assignment]
    routes = []
    for route, _service, _category, upstream, provider in rows:
        assert isinstance(route, Route) and isinstance(upstream, UpstreamService)
        upstream.provider = provider  # type: ignore[assignment]
        route.upstream = upstream
        route.service = service
        routes.append(route)
    return service, routes


def category_list_with_services() -> QuerySet[Category]:
    return Category.objects.filter(is_enabled=True).prefetch_related(
        Prefetch("services", queryset=Service.objects.filter(is_enabled=True))
    )
