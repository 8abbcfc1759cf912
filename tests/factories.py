from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import User
from catalog.models import Category, Route, Service
from providers.models import Provider, UpstreamService

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    name = factory.Sequence(lambda n: f"provider{n}")
    api_url = "http://127.0.0.1:8900/api/v2"
    api_key = "test-key"


class UpstreamServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UpstreamService

    provider = factory.SubFactory(ProviderFactory)
    external_id = factory.Sequence(lambda n: str(n + 1))
    name = factory.Sequence(lambda n: f"Upstream service {n}")
    type = "Default"
    category = "Instagram Followers"
    rate = Decimal("1.000000")
    min_quantity = 10
    max_quantity = 10000
    last_seen_at = factory.LazyFunction(timezone.now)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Category {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    type = "Default"
    min_quantity = 10
    max_quantity = 10000
    price = Decimal("1.300000")
    cost = Decimal("1.000000")


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route

    service = factory.SubFactory(ServiceFactory)
    upstream = factory.SubFactory(UpstreamServiceFactory)
    priority = 1
