from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.models import Order
from tests.factories import ServiceFactory


def make_order(user: Any, **extra: Any) -> Order:
    service = extra.pop("service", None) or ServiceFactory()
    values: dict[str, Any] = {
        "user": user,
        "service": service,
        "link": "https://instagram.com/someone",
        "quantity": 1000,
        "price_per_1000": Decimal("1.300000"),
        "charge": Decimal("1.30000"),
        "cost": Decimal("1.00000"),
        **extra,
    }
    return Order.objects.create(**values)


@pytest.fixture
def customer_client(customer: Any) -> Client:
    client = Client()
    client.force_login(customer)
    return client


@pytest.fixture
def other_client(other_customer: Any) -> Client:
    client = Client()
    client.force_login(other_customer)
    return client
