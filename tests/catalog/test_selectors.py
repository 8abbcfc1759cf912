"""catalog.selectors: what placing an order reads about a service."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.selectors import service_for_sale_with_routes
from tests.factories import RouteFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_a_service_and_its_usable_routes_best_first_in_one_query():
    best = RouteFactory(priority=1)
    service = best.service
    second = RouteFactory(service=service, priority=2)
    RouteFactory(service=service, priority=0, is_enabled=False)
    gone = RouteFactory(service=service, priority=0)
    gone.upstream.is_removed = True
    gone.upstream.save()
    with CaptureQueriesContext(connection) as queries:
        found, routes, _rates = service_for_sale_with_routes(pk=service.pk)
        assert found == service and found.category.name == service.category.name
        assert routes == [best, second]
        assert routes[0].upstream.provider.pk == best.upstream.provider_id
        assert all(r.service is found for r in routes)
    assert len(queries) == 1


def test_a_service_without_usable_routes_is_still_found_and_one_off_sale_is_not():
    lonely = ServiceFactory()
    assert service_for_sale_with_routes(pk=lonely.pk) == (lonely, [], {})
    hidden = RouteFactory().service
    hidden.is_enabled = False
    hidden.save()
    assert service_for_sale_with_routes(pk=hidden.pk) == (None, [], {})
    closed = RouteFactory().service
    closed.category.is_enabled = False
    closed.category.save()
    assert service_for_sale_with_routes(pk=closed.pk) == (None, [], {})
    assert service_for_sale_with_routes(pk=10**9) == (None, [], {})


def test_the_services_figures_and_the_customers_own_rate_come_in_the_same_query(customer):
    from decimal import Decimal

    from django.utils import timezone

    from catalog.models import CustomRate, ServiceQuality
    from tests.factories import UserFactory

    route = RouteFactory()
    service = route.service
    ServiceQuality.objects.create(service=service, finished=40, completed=40, computed_at=timezone.now())
    CustomRate.objects.create(user=customer, service=service, rate=Decimal("0.9"))
    with CaptureQueriesContext(connection) as queries:
        found, _routes, rates = service_for_sale_with_routes(pk=service.pk, customer=customer)
        assert found is not None and found.quality.finished == 40
        assert rates[service.pk].rate == Decimal("0.9")
    assert len(queries) == 1
    # Another customer has no rate of their own; a service without figures reads as none.
    other = UserFactory()
    bare = RouteFactory().service
    with CaptureQueriesContext(connection) as queries:
        assert service_for_sale_with_routes(pk=service.pk, customer=other)[2] == {}
        found, _routes, _rates = service_for_sale_with_routes(pk=bare.pk, customer=other)
        assert found is not None and not hasattr(found, "quality")  # no query either
    assert len(queries) == 2
