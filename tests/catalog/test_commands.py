from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import ApiKey, User
from catalog.models import Service
from providers.models import Provider, ProviderCall, UpstreamService
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(simulator, tmp_path, monkeypatch):
    monkeypatch.setattr("catalog.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
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
    monkeypatch.setattr("catalog.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
    with pytest.raises(CommandError, match="does not answer"):
        call_command("demo_seed", "--provider-url", "http://127.0.0.1:9/api/v2", "--json")


def test_providers_sync_command_mirrors_changes_and_records_calls(simulator):
    provider = Provider.objects.create(name="sim", api_url=simulator.url, api_key="test-key")
    out = StringIO()
    call_command("providers_sync", "--provider", "sim", stdout=out)
    total = len(simulator.services())
    assert f"{total} new" in out.getvalue()
    simulator.set_service(1, rate="9.99", name="Changed")
    simulator.remove_service(2)
    out = StringIO()
    call_command("providers_sync", stdout=out)
    assert "1 changed, 1 removed" in out.getvalue()
    assert UpstreamService.objects.get(provider=provider, external_id="1").name == "Changed"
    assert UpstreamService.objects.get(provider=provider, external_id="2").is_removed
    call = ProviderCall.objects.filter(provider=provider, action="services").first()
    assert call.outcome == "ok" and call.http_status == 200 and "key=" not in call.request


def test_providers_sync_command_unknown_provider():
    with pytest.raises(CommandError, match="No provider named"):
        call_command("providers_sync", "--provider", "nope")


def test_hostile_provider_text_synced_from_upstream_is_escaped(simulator, client, tmp_path, monkeypatch, staff):
    hostile = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
    simulator.set_service(1, name=hostile, desc=hostile)
    monkeypatch.setattr("catalog.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
    call_command("demo_seed", "--provider-url", simulator.url, "--json", stdout=StringIO())
    body = client.get(reverse("catalog:services")).content.decode()
    assert "window.pwned" in body  # the text is there…
    assert "<script>window" not in body and "<img src=x" not in body  # …but only as text
    client.force_login(staff)
    body = client.get(reverse("admin:providers_upstreamservice_changelist")).content.decode()
    assert "<script>window" not in body and "<img src=x" not in body
