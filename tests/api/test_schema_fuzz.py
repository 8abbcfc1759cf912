"""schemathesis against our own OpenAPI description: no request, however malformed, gets a 500."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from smmpanel.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def valid_key(customer):
    from accounts.services import api_key_issue
    from tests.api.conftest import fund
    from tests.factories import RouteFactory

    fund(customer)
    RouteFactory()
    return api_key_issue(user=customer)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_500(case, valid_key, settings_override):
    response = case.call()
    assert response.status_code < 500, response.text
    if isinstance(case.body, dict):
        # The same request again with a real key reaches the actions themselves.
        case.body = {**case.body, "key": valid_key}
        response = case.call()
        assert response.status_code < 500, response.text
        if response.status_code == 200:
            assert isinstance(json.loads(response.text), dict | list)


@pytest.fixture
def settings_override(settings):
    # Fuzzing sends many requests from one address with one key: no rate limit here.
    settings.API_RATE_LIMIT_PER_KEY = "100000/m"
    settings.API_RATE_LIMIT_INVALID_KEY = "100000/m"
