"""The customer's webhook pages: the secret shown once, rotation, the log, replays (own events
only, POST only, rate-limited)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from webhooks.models import Endpoint, Event, EventState

from .conftest import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def test_setting_the_url_shows_the_secret_once(client_of, customer, receiver):
    client = client_of(customer)
    page = client.get(reverse("api:page"))
    assert page.status_code == 200 and b'id="webhooks"' in page.content
    answer = client.post(reverse("webhooks:endpoint_save"), {"url": receiver.url})
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    secret = answer.context["secret"]
    assert secret.startswith("whsec_") and secret.encode() in answer.content
    assert secret.encode() not in client.get(reverse("api:page")).content  # never again
    # Saving another URL keeps the secret and does not show it.
    again = client.post(reverse("webhooks:endpoint_save"), {"url": receiver.url + "2"})
    assert again.status_code == 302
    assert Endpoint.objects.get(user=customer).url == receiver.url + "2"


def test_rotation_shows_a_new_secret(client_of, customer, endpoint):
    _, old = endpoint
    answer = client_of(customer).post(reverse("webhooks:endpoint_rotate"))
    assert answer.status_code == 200
    assert answer.context["secret"] != old and answer.context["rotated"]
    assert Endpoint.objects.get(user=customer).previous_secret_until is not None


def test_a_private_url_is_refused_with_a_message(client_of, customer, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    answer = client_of(customer).post(reverse("webhooks:endpoint_save"), {"url": "http://127.0.0.1/x"}, follow=True)
    assert b"loopback, private or reserved" in answer.content
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("name", ["webhooks:endpoint_save", "webhooks:endpoint_rotate", "webhooks:endpoint_delete"])
def test_changes_are_post_only(client_of, customer, name):
    assert client_of(customer).get(reverse(name)).status_code == 405


def test_the_owner_replays_an_event_and_another_customer_gets_404(
    client_of, customer, other_customer, endpoint, receiver, sent
):
    (event,) = record(customer)
    Event.objects.filter(pk=event.pk).update(state=EventState.FAILED)
    url = reverse("webhooks:event_replay", args=[event.event_id])
    other = client_of(other_customer)
    assert other.post(url).status_code == 404
    assert other.get(reverse("webhooks:log")).content.count(event.event_id.encode()) == 0
    event.refresh_from_db()
    assert event.replay_requested_at is None
    owner = client_of(customer)
    assert owner.get(url).status_code == 405
    assert owner.post(url).status_code == 302
    event.refresh_from_db()
    assert event.replay_requested_at is not None


def test_replay_is_rate_limited(client_of, customer, endpoint, sent, settings):
    settings.WEBHOOKS_REPLAY_RATE = "2/h"  # an hour: no window boundary falls inside the test
    (event,) = record(customer)
    Event.objects.filter(pk=event.pk).update(state=EventState.DELIVERED)
    client = client_of(customer)
    url = reverse("webhooks:event_replay", args=[event.event_id])
    assert [client.post(url).status_code for _ in range(3)] == [302, 302, 429]


def test_replay_sends_the_same_id_again(customer, endpoint, receiver, sent):
    from webhooks import services

    (event,) = record(customer)
    assert services.event_deliver(event_pk=event.pk) == "delivered"
    assert services.event_replay(event_pk=event.pk)
    assert [d["id"] for d in receiver.deliveries] == [event.event_id, event.event_id]
    assert list(event.deliveries.order_by("pk").values_list("replay", flat=True)) == [False, True]


def test_the_log_lists_the_owners_deliveries(client_of, customer, endpoint, receiver, sent):
    from webhooks import services

    (event,) = record(customer)
    services.event_deliver(event_pk=event.pk)
    page = client_of(customer).get(reverse("webhooks:log"))
    assert page.status_code == 200
    assert event.event_id.encode() in page.content and b"HTTP 204" in page.content
