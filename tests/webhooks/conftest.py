from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulators.webhook_receiver import WebhookReceiver
from webhooks import services


@pytest.fixture(autouse=True)
def _loopback_receivers(settings: Any) -> None:
    # The receiver simulator listens on 127.0.0.1.
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOKS_CONNECT_TIMEOUT = 1.0
    settings.WEBHOOKS_READ_TIMEOUT = 1.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


class Sent(list[tuple[int, float | None]]):
    def ids(self) -> list[int]:
        return [pk for pk, _ in self]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Deliveries enqueued (event pk, countdown) instead of sent to the broker."""
    recorded = Sent()

    def enqueue(*, event_pk: int, countdown: float | None = None) -> None:
        recorded.append((event_pk, countdown))

    monkeypatch.setattr(services, "enqueue_deliver", enqueue)
    return recorded


@pytest.fixture
def endpoint(customer: Any, receiver: WebhookReceiver) -> tuple[Any, str]:
    """The customer's endpoint at the receiver, which knows the secret shown once."""
    secret = services.endpoint_save(user=customer, url=receiver.url)
    assert secret is not None
    receiver.secret = secret
    return customer.webhook_endpoint, secret


def record(user: Any, *, order_ref: int = 1, status: str = "In progress", n: int = 1) -> list[Any]:
    """Write n outbox rows for `user` as the orders app would (committed at once in tests)."""
    from webhooks.models import Event

    before = set(Event.objects.values_list("pk", flat=True))
    for i in range(n):
        services.webhook_events_record(
            events=[
                services.NewEvent(
                    user_id=user.pk,
                    type=services.ORDER_UPDATED,
                    order_ref=order_ref,
                    data={"order": order_ref, "status": status, "remains": str(100 - i)},
                )
            ]
        )
    return list(Event.objects.exclude(pk__in=before).order_by("pk"))
