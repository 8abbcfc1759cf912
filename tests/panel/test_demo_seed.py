"""demo_seed: the demo provider, its services for sale, an admin and a funded customer."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, User
from catalog.models import Service
from providers.models import Provider
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(simulator, tmp_path, monkeypatch):
    monkeypatch.setattr("panel.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
    out = StringIO()
    call_command(
        "demo_seed", "--provider-url", simulator.url, "--provider-key", "demo-provider-key", "--json", stdout=out
    )
    return json.loads(out.getvalue())


def test_demo_seed_prints_credentials_as_json_and_imports_everything(seeded, simulator, client):
    assert set(seeded) == {"admin", "customer", "provider"}
    assert seeded["provider"]["url"] == simulator.url
    assert Service.objects.filter(is_enabled=True).count() == len(simulator.services())
    admin = User.objects.get(username=seeded["admin"]["username"])
    assert admin.is_staff and admin.check_password(seeded["admin"]["password"])
    customer = User.objects.get(email=seeded["customer"]["email"])
    assert customer.check_password(seeded["customer"]["password"])
    assert wallet_balance(user=customer) > 0
    reply = client.post("/api/v2", {"key": seeded["customer"]["api_key"], "action": "services"})
    assert len(json.loads(reply.content)) == len(simulator.services())


def test_demo_seed_is_idempotent(seeded, simulator, tmp_path, monkeypatch):
    before = (Service.objects.count(), User.objects.count(), Provider.objects.count())
    customer = User.objects.get(email=seeded["customer"]["email"])
    balance = wallet_balance(user=customer)
    out = StringIO()
    call_command(
        "demo_seed", "--provider-url", simulator.url, "--provider-key", "demo-provider-key", "--json", stdout=out
    )
    again = json.loads(out.getvalue())
    assert again == seeded
    assert (Service.objects.count(), User.objects.count(), Provider.objects.count()) == before
    assert wallet_balance(user=customer) == balance
    assert ApiKey.objects.count() == 1


def test_demo_seed_fails_clearly_when_the_provider_is_down(tmp_path, monkeypatch):
    monkeypatch.setattr("panel.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
    with pytest.raises(CommandError, match="does not answer"):
        call_command("demo_seed", "--provider-url", "http://127.0.0.1:9/api/v2", "--json")
