"""`make run`: the demo customer's endpoint points at the local receiver, which reads the secret
from the credentials file and accepts the panel's signatures."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from simulators.webhook_receiver import WebhookReceiver
from webhooks import services
from webhooks.models import Endpoint

from .conftest import record

pytestmark = pytest.mark.django_db


def test_demo_seed_points_the_demo_customer_at_the_receiver(simulator, tmp_path, monkeypatch, sent):
    creds = tmp_path / "creds.json"
    monkeypatch.setattr("panel.management.commands.demo_seed.CREDENTIALS", creds)
    call_command(
        "demo_seed", "--provider-url", simulator.url, "--provider-key", "demo-provider-key", "--json", stdout=StringIO()
    )
    endpoint = Endpoint.objects.get(user__email="demo@example.com")
    assert endpoint.url == "http://127.0.0.1:8913/hook"
    assert json.loads(creds.read_text())["webhook_secret"].startswith("whsec_")
    # Seeding again keeps the endpoint and its secret.
    secret = json.loads(creds.read_text())["webhook_secret"]
    call_command(
        "demo_seed", "--provider-url", simulator.url, "--provider-key", "demo-provider-key", "--json", stdout=StringIO()
    )
    assert json.loads(creds.read_text())["webhook_secret"] == secret

    receiver = WebhookReceiver(credentials=str(creds)).start()
    try:
        Endpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
        (event,) = record(endpoint.user)
        assert services.event_deliver(event_pk=event.pk) == "delivered"
        assert receiver.deliveries[0]["valid"] is True
    finally:
        receiver.stop()
