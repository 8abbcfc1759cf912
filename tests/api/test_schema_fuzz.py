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
    # Requests go straight to the WSGI app; like Django's test client, keep the test's
    # database connection (and its transaction) open between them.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Fuzzing sends many requests from one address with one key: no rate limit here.
    settings.API_RATE_LIMIT_PER_KEY = "100000/m"
    settings.API_RATE_LIMIT_INVALID_KEY = "100000/m"
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
