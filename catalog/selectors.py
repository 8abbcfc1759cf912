from __future__ import annotations

from decimal import Decimal

from django.db.models import Prefetch, QuerySet

from accounts.models import User
from kernel.db import fetch_joined, first_or_none
from providers.models import Provider, UpstreamService

from .models import Category, CustomRate, Route, RouteQuality, Service, ServiceQuality
from .pricing import price_for_customer


def custom_rates_for_user(*, user: User | None) -> dict[int, CustomRate]:
    """This customer's own rates by service id (one query; none for a visitor)."""
    if user is None or not user.is_authenticated:
        return {}
    return {r.service_id: r for r in CustomRate.objects.filter(user=user)}


def service_price_for_user(
    *, service: Service, user: User | None, custom_rates: dict[int, CustomRate] | None = None
) -> Decimal:
    """Price per 1000 this customer pays: their custom rate for the service, else the price
    with their discount (catalog.pricing.price_for_customer). Pass `custom_rates`
    (custom_rates_for_user) when pricing many services; without it one row is looked up."""
    if custom_rates is None and user is not None and user.is_authenticated:
        custom = CustomRate.objects.filter(user=user, service=service).first()
        custom_rates = {service.pk: custom} if custom else {}
    return rate_for_user(
        service_id=service.pk, price=service.price, cost=service.cost, user=user, custom_rates=custom_rates or {}
    )


def rate_for_user(
    *, service_id: int, price: Decimal, cost: Decimal | None, user: User | None, custom_rates: dict[int, CustomRate]
) -> Decimal:
    """`service_price_for_user` from a service's values (lists read as `.values()`)."""
    if user is None or not user.is_authenticated:
        return price_for_customer(price=price, discount_percent=Decimal("0"))
    custom = custom_rates.get(service_id)
    return price_for_customer(
        price=price,
        discount_percent=user.discount_percent,
        cost=cost,
        custom_rate=custom.rate if custom else None,
        custom_markup=custom.markup_percent if custom else None,
    )


def service_list_for_sale() -> QuerySet[Service]:
    return Service.objects.filter(is_enabled=True, category__is_enabled=True).select_related("category")


def service_list_with_quality() -> QuerySet[Service]:
    """Services for sale with their measured figures, for the lists that show every one (the
    services page, the new-order page, the API's `services`): without the time stamps none of
    them shows, whose parsing was a tenth of such a page's time."""
    return service_list_for_sale().select_related("quality").defer("created_at", "updated_at", "quality__computed_at")


def service_get_for_sale(*, pk: int) -> Service | None:
    return first_or_none(service_list_for_sale().filter(pk=pk))


def _usable_routes() -> QuerySet[Route]:
    return Route.objects.filter(is_enabled=True, upstream__is_removed=False, upstream__provider__is_enabled=True)


def service_routes(*, service: Service | int) -> list[Route]:
    """Enabled routes whose provider can take orders, best first (of a service or service id)."""
    return list(
        _usable_routes().filter(service=service).select_related("upstream__provider").order_by("priority", "id")
    )


def service_routes_for_submission(*, service_id: int) -> tuple[Service | None, list[Route]]:
    """The service (its routing policy) and its enabled routes with their providers and
    measured figures, in one query when it has routes."""
    routes = list(
        Route.objects.filter(is_enabled=True, upstream__is_removed=False, upstream__provider__is_enabled=True)
        .filter(service_id=service_id)
        .select_related("service", "upstream__provider", "quality")
        .order_by("priority", "id")
    )
    if not routes:
        return first_or_none(Service.objects.filter(pk=service_id)), []
    service = routes[0].service
    for route in routes[1:]:
        route.service = service
    return service, routes


def routes_measured(routes: list[Route]) -> None:
    """Attach each route's measured figures (route.quality, or none) in one query."""
    figures = {q.route_id: q for q in RouteQuality.objects.filter(route_id__in=[r.pk for r in routes])}
    for route in routes:
        quality = figures.get(route.pk)
        if quality is None:
            # Cached as missing: reading route.quality raises DoesNotExist without a query.
            Route.quality.related.set_cached_value(route, None)  # type: ignore[attr-defined]
        else:
            Route.quality.related.set_cached_value(route, quality)  # type: ignore[attr-defined]


def service_for_sale_with_routes(
    *, pk: int, customer: User | None = None
) -> tuple[Service | None, list[Route], dict[int, CustomRate]]:
    """A service on sale with its measured figures (service.quality, or none) and its usable
    routes, best first, and `customer`'s own rate for it (as custom_rates_for_user gives it),
    in one query when it has routes (placing an order needs all of them); a second query only
    tells an unsellable service from one without routes.

    The query is _usable_routes() with the service on sale, written out (kernel.db.fetch_joined):
    compiling it with its four joins cost more than running it, on every order placed."""
    customer_id = customer.pk if customer is not None and customer.is_authenticated else None
    rows = fetch_joined(
        [
            (Route, "r"),
            (Service, "s"),
            (Category, "c"),
            (UpstreamService, "us"),
            (Provider, "p"),
            (ServiceQuality, "sq"),
            (CustomRate, "cr"),
        ],
        "FROM catalog_route r JOIN catalog_service s ON s.id = r.service_id "
        "JOIN catalog_category c ON c.id = s.category_id "
        "JOIN providers_upstreamservice us ON us.id = r.upstream_id "
        "JOIN providers_provider p ON p.id = us.provider_id "
        "LEFT JOIN catalog_servicequality sq ON sq.service_id = s.id "
        "LEFT JOIN catalog_customrate cr ON cr.service_id = s.id AND cr.user_id = %s "
        "WHERE r.service_id = %s AND r.is_enabled = %s AND us.is_removed = %s AND p.is_enabled = %s "
        "AND s.is_enabled = %s AND c.is_enabled = %s ORDER BY r.priority, r.id",
        [customer_id, pk, True, False, True, True, True],
    )
    if not rows:
        # Nothing can be sold without a route: no rate to look up.
        return service_get_for_sale(pk=pk), [], {}
    service, category, quality, custom = rows[0][1], rows[0][2], rows[0][5], rows[0][6]
    assert isinstance(service, Service)
    service.category = category  # type: ignore[assignment]
    # Cached, also as missing: reading service.quality makes no query either way.
    Service.quality.related.set_cached_value(service, quality if quality.pk is not None else None)  # type: ignore[attr-defined]
    assert isinstance(custom, CustomRate)
    rates = {service.pk: custom} if custom.pk is not None else {}
    routes = []
    for route, _service, _category, upstream, provider, _quality, _custom in rows:
        assert isinstance(route, Route) and isinstance(upstream, UpstreamService)
        upstream.provider = provider  # type: ignore[assignment]
        route.upstream = upstream
        route.service = service
        routes.append(route)
    return service, routes, rates


def category_list_with_services() -> QuerySet[Category]:
    return Category.objects.filter(is_enabled=True).prefetch_related(
        Prefetch("services", queryset=Service.objects.filter(is_enabled=True))
    )
