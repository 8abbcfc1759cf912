from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import mail_admins
from django.utils import timezone

from kernel import outbound

from .client import CallRecord, ProviderClient
from .models import Provider, ProviderCall

logger = logging.getLogger(__name__)


def provider_url_validate(*, url: str, allow_private: bool | None = None, resolve: bool = True) -> None:
    """Refuse provider URLs that are not http(s) or that point inside our own network (SSRF).

    With `resolve`, a host name is looked up and every answer checked (when staff save a
    URL). Calls do not rely on that answer: the client's transport resolves again and
    connects only to an address it checked itself (smmpanel/outbound.py).
    """
    if allow_private is None:
        allow_private = settings.PROVIDERS_ALLOW_PRIVATE_URLS
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationError("The provider URL is not a valid address.") from exc
    if parts.scheme not in {"http", "https"} or not host:
        raise ValidationError("The provider URL must start with http:// or https:// and name a host.")
    if allow_private or (not resolve and outbound.host_address(host) is None):
        return
    try:
        outbound.resolve_checked(host, port or (443 if parts.scheme == "https" else 80), allow_private=False)
    except outbound.AddressRefused as exc:
        raise ValidationError(f"The provider URL points to a private, loopback or link-local address: {exc}.") from exc
    except (OSError, UnicodeError) as exc:
        raise ValidationError("The provider's host name does not resolve.") from exc


def _call_recorder(provider_id: int):  # type: ignore[no-untyped-def]
    def record(call: CallRecord) -> None:
        ProviderCall.objects.create(
            provider_id=provider_id,
            action=call.action,
            order_ref=call.order_ref,
            started_at=call.started_at,
            duration_ms=call.duration_ms,
            http_status=call.http_status,
            outcome=call.outcome,
            error=call.error,
            request=call.request,
            body=call.body,
        )

    return record


def provider_client(*, provider: Provider, record_calls: bool = True) -> ProviderClient:
    """A client for this provider; every call it makes is recorded as a ProviderCall."""
    # Checked again at call time (the setting may have changed); a host name is resolved
    # and checked by the client's transport, once, for the connection it makes.
    allow_private = settings.PROVIDERS_ALLOW_PRIVATE_URLS
    provider_url_validate(url=provider.api_url, allow_private=allow_private, resolve=False)
    return ProviderClient(
        url=provider.api_url,
        allow_private_addresses=allow_private,
        key=provider.api_key,
        connect_timeout=settings.PROVIDER_CONNECT_TIMEOUT,
        read_timeout=settings.PROVIDER_READ_TIMEOUT,
        max_response_bytes=settings.PROVIDER_MAX_RESPONSE_BYTES,
        on_call=_call_recorder(provider.pk) if record_calls else None,
    )


def provider_pause(*, provider: Provider, reason: str) -> None:
    """Stop sending orders to a provider whose account is the problem, and tell staff."""
    updated = Provider.objects.filter(pk=provider.pk, paused_reason="").update(paused_reason=reason[:255])
    provider.paused_reason = reason[:255]
    if updated:
        logger.warning("provider %s paused: %s", provider.name, reason)
        mail_admins(f"Provider {provider.name} paused", f"Orders wait until staff resume it.\n\nReason: {reason}")


def provider_resume(*, provider: Provider) -> None:
    Provider.objects.filter(pk=provider.pk).update(paused_reason="")
    provider.paused_reason = ""


def provider_call_refused(*, provider: Provider, action: str, error: ValidationError) -> None:
    """Record a call the outbound-URL guard stopped before it was made, next to the real calls."""
    ProviderCall.objects.create(
        provider=provider,
        action=action,
        started_at=timezone.now(),
        duration_ms=0,
        outcome=ProviderCall.Outcome.NOT_SENT,
        error=f"URL refused: {' '.join(error.messages)}"[:500],
    )


def provider_refresh_balance(*, provider: Provider) -> Provider:
    try:
        client = provider_client(provider=provider)
    except ValidationError as exc:
        provider_call_refused(provider=provider, action="balance", error=exc)
        raise
    balance = client.balance()
    provider.balance = balance.balance
    provider.balance_currency = balance.currency
    provider.balance_checked_at = timezone.now()
    provider.save(update_fields=["balance", "balance_currency", "balance_checked_at"])
    return provider
