"""Delivery: per-order order, backoff, the give-up after a day, de-duplication, the limits of
one POST, and the outbound guard."""

from __future__ import annotations

import random
import re
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from freezegun import freeze_time

from webhooks import services
from webhooks.models import Delivery, Endpoint, Event, EventState

from .conftest import record

pytestmark = pytest.mark.django_db


def state(event: Event) -> str:
    event.refresh_from_db()
    return event.state


def test_an_orders_later_event_waits_for_the_earlier_one(customer, endpoint, receiver, sent):
    first, second = record(customer, order_ref=7, n=2)
    (other,) = record(customer, order_ref=8)
    receiver.fail_next = 1
    assert services.event_deliver(event_pk=first.pk) == "retry"
    # The second is not sent while the first is pending, even when its message arrives first;
    # another order's event is not held up.
    assert services.event_deliver(event_pk=second.pk) == "skipped"
    assert services.event_deliver(event_pk=other.pk) == "delivered"
    assert services.events_sweep(now=timezone.now() + timedelta(days=1)) == 1  # only the head of order 7
    Event.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    sent.clear()
    with pytest.MonkeyPatch.context():
        assert services.event_deliver(event_pk=first.pk) == "delivered"
    assert services.event_deliver(event_pk=second.pk) == "delivered"
    order7 = [d["id"] for d in receiver.accepted() if d["body"]["data"]["order"] == 7]
    assert order7 == [first.event_id, second.event_id]


def test_a_finished_event_enqueues_the_orders_next(
    customer, endpoint, receiver, sent, django_capture_on_commit_callbacks
):
    first, second = record(customer, order_ref=7, n=2)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.event_deliver(event_pk=first.pk)
    assert sent.ids() == [second.pk]


def test_backoff_doubles_with_jitter_up_to_the_cap(settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 30
    settings.WEBHOOKS_RETRY_MAX_SECONDS = 3600
    rng = random.Random(1)
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (4, 240), (8, 3600), (30, 3600)]:
        delays = [services.retry_delay(attempt, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one value


def test_a_failing_event_is_retried_for_a_day_then_failed_and_the_next_goes(
    customer, endpoint, receiver, sent, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_GIVE_UP_HOURS = 25
    receiver.gone = True  # 410 on every attempt
    first, second = record(customer, order_ref=3, n=2)
    start = first.created_at
    attempts = []
    with freeze_time(start) as clock:
        while True:
            event = Event.objects.get(pk=first.pk)
            if event.state != EventState.PENDING:
                break
            clock.move_to(event.next_attempt_at)
            sent.clear()
            with django_capture_on_commit_callbacks(execute=True):
                outcome = services.event_deliver(event_pk=first.pk)
            attempts.append((timezone.now() - start, outcome))
            assert len(attempts) < 100
    delays = [attempts[i + 1][0] - attempts[i][0] for i in range(len(attempts) - 1)]
    assert [o for _, o in attempts[:-1]] == ["retry"] * (len(attempts) - 1)
    assert attempts[-1] == (timedelta(hours=25), "failed")  # given up at the window's end, not before
    for i, delay in enumerate(delays[:-1]):  # the last pause is cut short at the window's end
        ceiling = timedelta(seconds=min(30 * 2**i, 3600))
        assert ceiling / 2 <= delay <= ceiling
    assert Delivery.objects.filter(event=first).count() == len(attempts)
    assert set(Delivery.objects.filter(event=first).values_list("status_code", flat=True)) == {410}
    assert state(first) == EventState.FAILED
    assert sent.ids() == [second.pk]  # the order's next event goes once this one is given up
    # Nothing ever arrived for the whole window: the endpoint is switched off and its owner told.
    endpoint_row = Endpoint.objects.get(user=customer)
    assert not endpoint_row.is_enabled
    assert [m.to for m in mail.outbox] == [[customer.email]]


def test_a_duplicated_message_sends_once_and_retries_reuse_the_event_id(customer, endpoint, receiver, sent):
    (event,) = record(customer)
    receiver.fail_next = 1
    assert services.event_deliver(event_pk=event.pk) == "retry"
    assert services.event_deliver(event_pk=event.pk) == "skipped"  # not due yet
    Event.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())
    assert services.event_deliver(event_pk=event.pk) == "delivered"
    assert services.event_deliver(event_pk=event.pk) == "skipped"  # the same message again
    assert [d["id"] for d in receiver.deliveries] == [event.event_id, event.event_id]
    assert Event.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_with_the_same_message_send_it_once(customer, receiver, settings):
    settings.WEBHOOKS_READ_TIMEOUT = 5.0
    secret = services.endpoint_save(user=customer, url=receiver.url)
    receiver.secret = secret or ""
    (event,) = record(customer)
    receiver.hang_rate, receiver.hang_seconds = 1.0, 0.5  # both are in flight together
    outcomes: list[str] = []

    def work() -> None:
        from django.db import connection

        outcomes.append(services.event_deliver(event_pk=event.pk))
        connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["delivered", "skipped"]
    assert len(receiver.deliveries) == 1


def test_a_hanging_receiver_times_out_and_is_retried(customer, endpoint, receiver, sent):
    receiver.hang_rate, receiver.hang_seconds = 1.0, 3.0
    (event,) = record(customer)
    assert services.event_deliver(event_pk=event.pk) == "retry"
    delivery = Delivery.objects.get(event=event)
    assert delivery.status_code is None and delivery.error == "timed out"
    assert delivery.duration_ms < 2900


def test_redirects_are_not_followed(customer, endpoint, receiver, sent):
    receiver.redirect = True
    (event,) = record(customer)
    assert services.event_deliver(event_pk=event.pk) == "retry"
    delivery = Delivery.objects.get(event=event)
    assert delivery.status_code == 307 and delivery.error == "redirect not followed"
    assert len(receiver.deliveries) == 1


def test_a_huge_answer_is_cut_at_the_limit(customer, endpoint, receiver, sent, settings):
    settings.WEBHOOKS_MAX_RESPONSE_BYTES = 10
    receiver.fail_next = 1  # 500 with a JSON body longer than 10 bytes
    (event,) = record(customer)
    services.event_deliver(event_pk=event.pk)
    assert Delivery.objects.get(event=event).error == "answer larger than 10 bytes"


def test_the_outbound_guard_refuses_private_receivers(customer, settings, receiver):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    for url in (
        "http://127.0.0.1:8913/hook",
        "http://10.0.0.5/hook",
        "http://[::1]/x",
        "http://2130706433/",
        "http://169.254.169.254/latest/meta-data",
    ):
        with pytest.raises(services.WebhookError):
            services.endpoint_save(user=customer, url=url)
    for url in ("ftp://example.com/", "https://user:pw@93.184.216.34/", "not a url"):
        with pytest.raises(services.WebhookError):
            services.endpoint_save(user=customer, url=url)
    assert not Endpoint.objects.exists()


def test_the_guard_also_refuses_at_delivery_time(customer, endpoint, receiver, sent, settings):
    # Saved while loopback was allowed; refused at the connection once it is not.
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    (event,) = record(customer)
    assert services.event_deliver(event_pk=event.pk) == "retry"
    assert "outbound address guard" in Delivery.objects.get(event=event).error
    assert receiver.deliveries == []


def test_no_endpoint_no_outbox_rows(customer, other_customer, endpoint, sent):
    assert record(other_customer) == []
    Endpoint.objects.filter(user=customer).update(is_enabled=False)
    assert record(customer) == []


def test_the_sweep_resends_only_events_that_are_overdue(customer, endpoint, settings):
    """A due event has its message queued already; the sweep sends one again only once it is
    WEBHOOKS_SWEEP_GRACE_SECONDS late, so a busy queue is not flooded with duplicates."""
    settings.WEBHOOKS_SWEEP_GRACE_SECONDS = 120
    (event,) = record(customer, order_ref=9)
    now = timezone.now()
    Event.objects.filter(pk=event.pk).update(next_attempt_at=now - timedelta(seconds=30))
    assert services.events_sweep(now=now) == 0
    Event.objects.filter(pk=event.pk).update(next_attempt_at=now - timedelta(seconds=121))
    assert services.events_sweep(now=now) == 1


@pytest.mark.postgres
def test_the_claim_is_one_statement_on_the_rows_own_columns(customer, endpoint, receiver, sent):
    """Ready check and claim are one UPDATE whose row conditions stay at the top of its WHERE:
    PostgreSQL re-checks those against a concurrent claim's write. Django turns a join into
    `id IN (SELECT ...)`, read from the old snapshot, where two workers could both win."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    (event,) = record(customer)
    with CaptureQueriesContext(connection) as queries:
        assert services.event_deliver(event_pk=event.pk) == "delivered"
    claim = queries.captured_queries[0]["sql"]
    assert claim.startswith("UPDATE webhooks_event SET lease_until")
    assert " IN (SELECT" not in claim and " JOIN " not in claim
    # The row's own conditions, at the top of the WHERE:
    assert re.search(
        r"WHERE id = \d+ AND state = 'pending' AND next_attempt_at <= '[^']+'::timestamptz AND \(lease_until IS NULL",
        claim,
    )
    # Nothing read before the claim: a skipped message costs one statement.
    with CaptureQueriesContext(connection) as queries:
        assert services.event_deliver(event_pk=event.pk) == "skipped"
    assert len(queries.captured_queries) == 1


def test_last_success_is_written_at_most_once_a_minute(customer, endpoint, receiver, sent):
    first, second, third = record(customer, order_ref=1) + record(customer, order_ref=2) + record(customer, order_ref=3)
    start = timezone.now()
    with freeze_time(start):
        services.event_deliver(event_pk=first.pk)
    assert Endpoint.objects.get(user=customer).last_success_at == start
    with freeze_time(start + timedelta(seconds=30)):
        services.event_deliver(event_pk=second.pk)
    assert Endpoint.objects.get(user=customer).last_success_at == start  # not written again yet
    with freeze_time(start + timedelta(seconds=61)):
        services.event_deliver(event_pk=third.pk)
    assert Endpoint.objects.get(user=customer).last_success_at == start + timedelta(seconds=61)


def test_an_endpoint_that_delivered_meanwhile_is_not_switched_off(customer, endpoint, receiver, sent, settings):
    """One event given up after its day is not a dead endpoint when others arrived, even when
    the success was recorded up to a minute before the event (last_success_at lags)."""
    settings.WEBHOOKS_GIVE_UP_HOURS = 25
    (event,) = record(customer)
    Endpoint.objects.filter(user=customer).update(last_success_at=event.created_at - timedelta(seconds=50))
    receiver.gone = True
    with freeze_time(event.created_at + timedelta(hours=25)):
        assert services.event_deliver(event_pk=event.pk) == "failed"
    assert Endpoint.objects.get(user=customer).is_enabled
    assert mail.outbox == []
