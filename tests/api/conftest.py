from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from accounts.services import api_key_issue
from tests.factories import RouteFactory, ServiceFactory
from wallets.services import wallet_credit


def fund(user, amount="100"):
    wallet_credit(user=user, amount=Decimal(amount), kind="deposit", idempotency_key=f"test:{uuid4().hex}")


@pytest.fixture
def key(customer):
    fund(customer)
    return api_key_issue(user=customer)


@pytest.fixture
def other_key(other_customer):
    fund(other_customer)
    return api_key_issue(user=other_customer)


@pytest.fixture
def service(db):
    route = RouteFactory(
        service=ServiceFactory(
            name="Followers", min_quantity=50, max_quantity=10000, price=Decimal("0.900000"), refill=True, cancel=True
        )
    )
    return route.service


@pytest.fixture
def api(client):
    def call(*, method="post", path="/api/v2", **params):
        response = getattr(client, method)(path, params)
        return response

    return call
