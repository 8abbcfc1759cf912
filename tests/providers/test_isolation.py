"""One provider refused or broken never stops the periodic work for the others."""

from __future__ import annotations

from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from catalog.tasks import provider_sync_task, providers_sync_all
from providers import services
from providers.models import Provider, ProviderCall, UpstreamService
from providers.tasks import providers_refresh_balances

pytestmark = pytest.mark.django_db
REFUSED_HOST = "refused.example"


@pytest.fixture
def two_providers(simulator: Any, monkeypatch: pytest.MonkeyPatch, settings: Any) -> tuple[Provider, Provider]:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    real_validate = services.provider_url_validate

    def validate(*, url: str, allow_private: bool | None = None, resolve: bool = True) -> None:
        # As in production when the host now resolves to a private address.
        if urlsplit(url).hostname == REFUSED_HOST:
            raise ValidationError("The provider URL points to a private, loopback or link-local address.")
        real_validate(url=url, allow_private=True)

    monkeypatch.setattr(services, "provider_url_validate", validate)
    # Names sort the refused provider first: the loops meet it before the healthy one.
    refused = Provider.objects.create(name="a-refused", api_url=f"http://{REFUSED_HOST}/api/v2", api_key="k")
    healthy = Provider.objects.create(name="b-healthy", api_url=simulator.url, api_key="test-key")
    return refused, healthy


def test_balance_refresh_goes_on_after_a_refused_provider(two_providers: tuple[Provider, Provider]) -> None:
    refused, healthy = two_providers
    providers_refresh_balances()
    healthy.refresh_from_db()
    refused.refresh_from_db()
    assert healthy.balance is not None and healthy.balance_checked_at is not None
    assert refused.balance_checked_at is None
    [call] = ProviderCall.objects.filter(provider=refused)
    assert (call.action, call.outcome) == ("balance", "not_sent") and "URL refused" in call.error


def test_balance_refresh_goes_on_after_an_unexpected_error(
    two_providers: tuple[Provider, Provider], monkeypatch: pytest.MonkeyPatch
) -> None:
    refused, healthy = two_providers
    Provider.objects.filter(pk=refused.pk).update(api_url=healthy.api_url)
    real = services.provider_refresh_balance

    def flaky(*, provider: Provider) -> Provider:
        if provider.pk == refused.pk:
            raise RuntimeError("a bug")
        return real(provider=provider)

    monkeypatch.setattr("providers.tasks.provider_refresh_balance", flaky)
    providers_refresh_balances()
    healthy.refresh_from_db()
    assert healthy.balance_checked_at is not None


def test_sync_command_goes_on_after_a_refused_provider(two_providers: tuple[Provider, Provider]) -> None:
    refused, healthy = two_providers
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="Some providers could not be synced"):
        call_command("providers_sync", stdout=out, stderr=err)
    assert UpstreamService.objects.filter(provider=healthy).exists()
    assert "a-refused: The provider URL points to a private" in err.getvalue()
    refused.refresh_from_db()
    assert "private" in refused.last_sync_error


def test_a_refused_provider_sync_task_records_the_error_and_ends_cleanly(
    two_providers: tuple[Provider, Provider],
) -> None:
    refused, healthy = two_providers
    provider_sync_task(refused.pk)  # does not raise: nothing for Celery to retry or report as a crash
    providers_sync_all()
    assert UpstreamService.objects.filter(provider=healthy).exists()
    refused.refresh_from_db()
    assert "private" in refused.last_sync_error
