from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from providers.models import Provider, ProviderCall, UpstreamService

pytestmark = pytest.mark.django_db


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
    monkeypatch.setattr("panel.management.commands.demo_seed.CREDENTIALS", tmp_path / "creds.json")
    call_command("demo_seed", "--provider-url", simulator.url, "--json", stdout=StringIO())
    body = client.get(reverse("catalog:services")).content.decode()
    assert "window.pwned" in body  # the text is there…
    assert "<script>window" not in body and "<img src=x" not in body  # …but only as text
    client.force_login(staff)
    body = client.get(reverse("admin:providers_upstreamservice_changelist")).content.decode()
    assert "<script>window" not in body and "<img src=x" not in body
