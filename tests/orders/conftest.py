from __future__ import annotations

from typing import Any

import pytest

from orders import services
from simulators.provider import Simulator
from tests.orders.factories import Shop


@pytest.fixture(autouse=True)
def _loopback_providers(settings: Any) -> None:
    # The simulator listens on 127.0.0.1.
    settings.PROVIDERS_ALLOW_PRIVATE_URLS = True


class Queue(list[tuple[str, int, float | None]]):
    """What the services asked Celery to run: (task, id, countdown)."""

    def ids(self, task: str = "submit") -> list[int]:
        return [pk for name, pk, _ in self if name == task]


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Queue:
    """Records enqueued tasks instead of sending them to a broker."""
    recorded = Queue()

    def recorder(name: str) -> Any:
        def enqueue(*, countdown: float | None = None, **ids: int) -> None:
            recorded.append((name, next(iter(ids.values())), countdown))

        return enqueue

    monkeypatch.setattr(services.outbox, "enqueue_submit", recorder("submit"))
    monkeypatch.setattr(services.outbox, "enqueue_refill", recorder("refill"))
    monkeypatch.setattr(services.outbox, "enqueue_cancel", recorder("cancel"))
    return recorded


@pytest.fixture
def shop(db: Any, simulator: Simulator) -> Shop:
    return Shop(simulator=simulator)


@pytest.fixture
def committed(queue: Queue, django_capture_on_commit_callbacks: Any) -> Any:
    """Run a service as if its transaction committed (on-commit callbacks run)."""

    def run(func: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return func(**kwargs)

    return run


@pytest.fixture
def place(committed: Any) -> Any:
    def run(user: Any, service: Any, *, idempotency_key: str | None = None, **fields: Any) -> Any:
        service_id = getattr(service, "pk", service)
        return committed(
            services.order_place, user=user, service_id=service_id, fields=fields, idempotency_key=idempotency_key
        )

    return run
