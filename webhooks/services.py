"""Webhook endpoints, the event outbox, and delivery.

- `webhook_events_record` is the outbox write: the orders app calls it inside the
  transaction of the change (no signals), with the payload already built, so this app never
  reads an order. Only customers with an enabled endpoint get a row.
- `event_deliver` sends one event: a compare-and-set claim (pending, due, not leased, and no
  earlier pending event of the same order for the endpoint) so a duplicated Celery message or
  two workers cannot send it twice at once and an order's events go out in order; the HTTP
  call runs outside any transaction; the answer is logged as a Delivery. Failures retry with
  exponential backoff and jitter until WEBHOOKS_GIVE_UP_HOURS after the event, then the event
  is failed and the order's next event goes.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from kernel.outbound import AddressRefused, resolve_checked
from siteconf.selectors import site_settings

from . import queries, sender, signing, vault
from .models import Delivery, Endpoint, Event, EventState

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

ORDER_UPDATED = "order.updated"
REFILL_UPDATED = "refill.updated"
EVENT_TYPES = (ORDER_UPDATED, REFILL_UPDATED)


class WebhookError(Exception):
    """A change to an endpoint that cannot be made; the message is for the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Endpoints --------------------------------------------------------------------------------


def endpoint_url_check(url: str) -> str:
    """The URL, stripped, if the panel may post to it; WebhookError otherwise. The address
    guard checks it again at every connection (a name may resolve elsewhere later)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(_("Enter an http:// or https:// address."))
    if parts.username or parts.password:
        raise WebhookError(_("Leave the user name and password out of the address."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError(_("The port in this address is not valid.")) from None
    try:
        resolve_checked(parts.hostname, port, allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_URLS)
    except AddressRefused:
        raise WebhookError(
            _("This address is on a loopback, private or reserved network: use a public address.")
        ) from None
    except (socket.gaierror, UnicodeError):
        raise WebhookError(_("This host name does not resolve.")) from None
    return url


def endpoint_save(*, user: User, url: str) -> str | None:
    """Set the customer's endpoint URL (and enable it). Returns the new signing secret when
    the endpoint is created, for showing once; None when only the URL changed."""
    url = endpoint_url_check(url)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(user=user).first()
        if endpoint is not None:
            endpoint.url = url
            endpoint.is_enabled = True
            endpoint.disabled_reason = ""
            endpoint.save(update_fields=["url", "is_enabled", "disabled_reason", "updated_at"])
            return None
        secret = signing.secret_new()
        Endpoint.objects.create(user=user, url=url, secret_encrypted=vault.seal(secret))
    return secret


def endpoint_rotate(*, user: User) -> str:
    """A new signing secret, returned for showing once. The old one keeps signing beside it
    for WEBHOOKS_ROTATION_OVERLAP_HOURS, so receivers can switch without losing events."""
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().filter(user=user).first()
        if endpoint is None:
            raise WebhookError(_("Set a webhook URL first."))
        secret = signing.secret_new()
        overlap = timedelta(hours=settings.WEBHOOKS_ROTATION_OVERLAP_HOURS)
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted if overlap else ""
        endpoint.previous_secret_until = timezone.now() + overlap if overlap else None
        endpoint.secret_encrypted = vault.seal(secret)
        endpoint.save(
            update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_until", "updated_at"]
        )
    return secret


def endpoint_delete(*, user: User) -> None:
    Endpoint.objects.filter(user=user).delete()


def endpoint_secrets(*, endpoint: Endpoint, now: datetime) -> list[str]:
    """The secrets to sign with now: the current one, and the previous one during its overlap."""
    found = [vault.unseal(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        found.append(vault.unseal(endpoint.previous_secret_encrypted))
    return found


# --- The outbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    user_id: int
    type: str
    order_ref: int
    data: dict[str, Any]


def webhook_events_record(*, events: Sequence[NewEvent]) -> int:
    """Write outbox rows for these changes, in the caller's transaction; delivery is enqueued
    when it commits. Customers without an enabled endpoint get nothing. Returns rows written."""
    if not events:
        return 0
    endpoints = dict(
        Endpoint.objects.filter(user_id__in={e.user_id for e in events}, is_enabled=True).values_list("user_id", "id")
    )
    if not endpoints:
        return 0
    now = timezone.now()
    rows = []
    for new in events:
        if new.user_id not in endpoints:
            continue
        event_id = f"msg_{uuid.uuid4().hex}"
        body = {"id": event_id, "type": new.type, "created": now.isoformat().replace("+00:00", "Z"), "data": new.data}
        rows.append(
            Event(
                event_id=event_id,
                endpoint_id=endpoints[new.user_id],
                type=new.type,
                order_ref=new.order_ref,
                payload=body,
                created_at=now,
                next_attempt_at=now,
            )
        )
    created = Event.objects.bulk_create(rows)
    ids = [event.pk for event in created if event.pk is not None]
    if ids:
        transaction.on_commit(partial(_enqueue_many, ids=ids), robust=True)
    return len(rows)


def _enqueue_many(*, ids: list[int]) -> None:
    for pk in ids:
        enqueue_deliver(event_pk=pk)


PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def enqueue_deliver(*, event_pk: int, countdown: float | None = None) -> None:
    from . import tasks  # the tasks call these services: imported when sending, not at import

    try:
        tasks.webhook_deliver_task.apply_async(
            kwargs={"event_pk": event_pk}, countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:  # any broker failure: the beat sweep sends it later
        logger.warning("could not enqueue webhook event %s; the sweep will", event_pk, exc_info=True)


# --- Delivery ---------------------------------------------------------------------------------


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempt` failed ones: base × 2^(attempt-1), capped,
    with "equal jitter" (half fixed, half random) so that retries of many events spread out."""
    rng = rng or random.Random()
    ceiling = min(settings.WEBHOOKS_RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 30), settings.WEBHOOKS_RETRY_MAX_SECONDS)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _earlier_pending() -> Exists:
    return Exists(
        Event.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            order_ref=OuterRef("order_ref"),
            state=EventState.PENDING,
            id__lt=OuterRef("id"),
        )
    )


def _body(event: Event) -> bytes:
    return json.dumps(event.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _send(*, event: Event, endpoint: Endpoint, now: datetime) -> sender.Attempt:
    body = _body(event)
    headers = signing.headers(
        secrets_=endpoint_secrets(endpoint=endpoint, now=now),
        msg_id=event.event_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    return sender.post(
        url=endpoint.url,
        body=body,
        headers=headers,
        allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_URLS,
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
        read_timeout=settings.WEBHOOKS_READ_TIMEOUT,
        max_response_bytes=settings.WEBHOOKS_MAX_RESPONSE_BYTES,
    )


# Endpoint.last_success_at is written at most this often: it only decides, after a day of
# failures, whether to switch an endpoint off, and a write per delivery would cost the worker
# a statement each time.
LAST_SUCCESS_EVERY = timedelta(minutes=1)


def event_deliver(*, event_pk: int) -> str:
    """Try to deliver one event now. Returns what happened: delivered, retry, failed, or
    skipped (not pending, not due, held by another worker, or waiting for an earlier event)."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.WEBHOOKS_CONNECT_TIMEOUT + settings.WEBHOOKS_READ_TIMEOUT + 60)
    if not queries.event_claim(event_pk=event_pk, now=now, lease_until=lease_until):
        return "skipped"
    event = queries.event_with_endpoint(event_pk=event_pk)
    endpoint = event.endpoint
    result = _send(event=event, endpoint=endpoint, now=now)
    done = timezone.now()
    give_up_at = event.created_at + timedelta(hours=settings.WEBHOOKS_GIVE_UP_HOURS)
    with transaction.atomic():
        Delivery.objects.create(
            event=event,
            endpoint=endpoint,
            attempt=event.attempts,
            url=endpoint.url,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
        )
        mine = partial(queries.event_settle, event_pk=event.pk, lease_until=lease_until)
        if result.delivered:
            mine(values={"state": EventState.DELIVERED, "finished_at": done, "lease_until": None, "last_error": ""})
            if endpoint.last_success_at is None or endpoint.last_success_at <= done - LAST_SUCCESS_EVERY:
                Endpoint.objects.filter(pk=endpoint.pk).update(last_success_at=done)
            outcome = "delivered"
        elif done >= give_up_at:
            mine(
                values={
                    "state": EventState.FAILED,
                    "finished_at": done,
                    "lease_until": None,
                    "last_error": _why(result),
                }
            )
            _maybe_disable(endpoint=endpoint, event=event, now=done)
            outcome = "failed"
        else:
            delay = retry_delay(event.attempts)
            next_at = min(done + timedelta(seconds=delay), give_up_at)
            mine(values={"next_attempt_at": next_at, "lease_until": None, "last_error": _why(result)})
            if delay <= settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS:
                # Longer waits are left to the beat sweep: a broker holds long countdowns badly.
                transaction.on_commit(partial(enqueue_deliver, event_pk=event.pk, countdown=delay), robust=True)
            return "retry"
        transaction.on_commit(partial(_enqueue_next, event=event), robust=True)
    return outcome


def _why(result: sender.Attempt) -> str:
    return (result.error or f"HTTP {result.status_code}")[:500]


def _enqueue_next(*, event: Event) -> None:
    """The order's next event, now that this one is finished."""
    following = queries.order_next_pending(endpoint_id=event.endpoint_id, order_ref=event.order_ref, after=event.pk)
    if following is not None:
        enqueue_deliver(event_pk=following)


def _maybe_disable(*, endpoint: Endpoint, event: Event, now: datetime) -> None:
    """An endpoint with no success since before this event's first attempt (the whole retry
    window, at least a day) is switched off, and its owner told."""
    # (last_success_at may lag a success by up to LAST_SUCCESS_EVERY.)
    if endpoint.last_success_at is not None and endpoint.last_success_at >= event.created_at - LAST_SUCCESS_EVERY:
        return
    if not settings.WEBHOOKS_AUTO_DISABLE:
        return
    reason = _("No delivery succeeded for %(hours)s hours.") % {"hours": settings.WEBHOOKS_GIVE_UP_HOURS}
    if not Endpoint.objects.filter(pk=endpoint.pk, is_enabled=True).update(is_enabled=False, disabled_reason=reason):
        return
    user = endpoint.user
    transaction.on_commit(
        partial(
            send_mail,
            subject=_("%(panel)s: your webhook endpoint was switched off") % {"panel": site_settings().panel_name},
            message=_(
                "We could not deliver order updates to %(url)s for %(hours)s hours, so we stopped sending them.\n"
                "Fix the receiver, then save the URL again on %(page)s to switch it back on; "
                "the delivery log there shows every attempt and lets you replay events."
            )
            % {
                "url": endpoint.url,
                "hours": settings.WEBHOOKS_GIVE_UP_HOURS,
                "page": f"{settings.PANEL_BASE_URL}/api/",
            },
            from_email=None,
            recipient_list=[user.email],
            fail_silently=True,
        ),
        robust=True,
    )


def events_sweep(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Beat: enqueue pending events that are overdue (by WEBHOOKS_SWEEP_GRACE_SECONDS) and at
    the head of their order's line (a lost message, a long backoff, an endpoint switched back
    on). Duplicates are harmless: the claim in event_deliver lets one through."""
    now = now or timezone.now()
    batch = batch or settings.WEBHOOKS_SWEEP_BATCH
    overdue = now - timedelta(seconds=settings.WEBHOOKS_SWEEP_GRACE_SECONDS)
    ids = list(
        Event.objects.filter(state=EventState.PENDING, next_attempt_at__lte=overdue, endpoint__is_enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .exclude(_earlier_pending())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:batch]
    )
    for pk in ids:
        enqueue_deliver(event_pk=pk)
    return len(ids)


# --- Replays ----------------------------------------------------------------------------------


def event_replay_request(*, event: Event) -> None:
    """Send a finished event again (same id), by the customer or staff. It goes out on its
    own, outside the order's line: receivers de-duplicate by `webhook-id`."""
    if event.state == EventState.PENDING:
        raise WebhookError(_("This event is still being delivered."))
    from . import tasks

    Event.objects.filter(pk=event.pk).update(replay_requested_at=timezone.now())

    transaction.on_commit(partial(tasks.webhook_replay_task.delay, event_pk=event.pk), robust=True)


def event_replay(*, event_pk: int) -> bool:
    event = Event.objects.select_related("endpoint").filter(pk=event_pk).first()
    if event is None or not event.endpoint.is_enabled:
        return False
    now = timezone.now()
    result = _send(event=event, endpoint=event.endpoint, now=now)
    Delivery.objects.create(
        event=event,
        endpoint=event.endpoint,
        attempt=event.attempts + 1,
        replay=True,
        url=event.endpoint.url,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        error=result.error,
    )
    Event.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    if result.delivered:
        Event.objects.filter(pk=event.pk, state=EventState.FAILED).update(state=EventState.DELIVERED, last_error="")
        Endpoint.objects.filter(pk=event.endpoint_id).update(last_success_at=timezone.now())
    return result.delivered
