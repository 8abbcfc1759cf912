"""Signatures as the Standard Webhooks specification documents them, checked by an
implementation written here from the spec (not webhooks.signing), and secrets at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from freezegun import freeze_time

from webhooks import services, signing, vault
from webhooks.models import Endpoint

from .conftest import record

pytestmark = pytest.mark.django_db


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side, from standardwebhooks.com: key = base64-decode(secret without
    "whsec_"); signed content = "{id}.{timestamp}.{body}"; any space-separated "v1,<b64>" that
    equals the HMAC-SHA256 passes; the timestamp within five minutes."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    key = base64.b64decode(secret[len("whsec_") :])
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body.decode()}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return any(
        part.split(",", 1)[0] == "v1" and hmac.compare_digest(part.split(",", 1)[1], expected)
        for part in headers["webhook-signature"].split(" ")
    )


def test_signature_matches_the_specifications_published_example():
    # The example of the Standard Webhooks libraries' test suites.
    got = signing.signature(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_verifies_with_the_spec_and_carries_the_event(customer, endpoint, receiver, sent):
    _, secret = endpoint
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    (event,) = record(customer, order_ref=42, status="Partial")
    assert services.event_deliver(event_pk=event.pk) == "delivered"
    (got,) = receiver.deliveries
    assert got["valid"] is True  # the simulator's own check
    body = json.dumps(got["body"], sort_keys=True, separators=(",", ":")).encode()
    headers = {"webhook-id": got["id"], "webhook-timestamp": got["timestamp"], "webhook-signature": got["signature"]}
    assert spec_verify(secret, headers, body)
    assert not spec_verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, body)
    assert not spec_verify(secret, headers, body.replace(b"Partial", b"Completed"))
    assert got["id"] == event.event_id and got["id"].startswith("msg_")
    assert got["body"]["id"] == event.event_id
    assert got["body"]["type"] == "order.updated"
    assert got["body"]["data"]["status"] == "Partial" and got["body"]["data"]["order"] == 42
    assert got["body"]["created"].endswith("Z")


def test_a_tampered_or_stale_delivery_is_refused_by_the_receiver(receiver):
    secret = signing.secret_new()
    receiver.secret = secret
    body = b'{"id":"msg_1"}'
    now = int(time.time())
    good = signing.headers(secrets_=[secret], msg_id="msg_1", timestamp=now, body=body)
    assert receiver.receive("/hook", good, body)[0] == 204
    assert receiver.receive("/hook", good, body + b" ")[0] == 400
    stale = signing.headers(secrets_=[secret], msg_id="msg_1", timestamp=now - 600, body=body)
    assert receiver.receive("/hook", stale, body)[0] == 400


def test_the_receiver_checks_each_paths_own_secret(receiver):
    # One receiver for many endpoints (the benchmark's): /hook/1 and /hook/2 each with its own.
    first, second = signing.secret_new(), signing.secret_new()
    assert receiver.control({"action": "secrets", "secrets": {"/hook/1": first, "/hook/2": second}}) == {"ok": True}
    body = b'{"id":"msg_1"}'
    now = int(time.time())
    by_first = signing.headers(secrets_=[first], msg_id="msg_1", timestamp=now, body=body)
    by_second = signing.headers(secrets_=[second], msg_id="msg_1", timestamp=now, body=body)
    assert receiver.receive("/hook/1", by_first, body)[0] == 204
    assert receiver.receive("/hook/2", by_second, body)[0] == 204
    assert receiver.receive("/hook/1", by_second, body)[0] == 400
    assert receiver.receive("/hook/2", by_first, body)[0] == 400
    state = receiver.control({"action": "state", "bodies": False})["deliveries"]
    assert [d["valid"] for d in state] == [True, True, False, False]
    assert all("body" not in d for d in state)


def test_the_secret_is_stored_encrypted_and_opens_with_the_settings_key(customer, receiver, settings):
    secret = services.endpoint_save(user=customer, url=receiver.url)
    assert secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM webhooks_endpoint")
        (stored,) = cursor.fetchone()
    assert secret not in stored and secret[6:] not in stored
    assert vault.unseal(stored) == secret
    # A rotated SECRET_KEY (the old one kept as a fallback) still opens it.
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-long-random-secret-key-for-the-rotation-test-0123456789"
    assert vault.unseal(stored) == secret


def test_the_secret_is_returned_only_when_created_or_rotated(customer, receiver):
    first = services.endpoint_save(user=customer, url=receiver.url)
    assert first is not None
    assert services.endpoint_save(user=customer, url=receiver.url + "/v2") is None  # a URL change keeps it
    endpoint = Endpoint.objects.get(user=customer)
    assert vault.unseal(endpoint.secret_encrypted) == first


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(
    customer, endpoint, receiver, sent, settings
):
    settings.WEBHOOKS_ROTATION_OVERLAP_HOURS = 24
    _, old = endpoint
    new = services.endpoint_rotate(user=customer)
    assert new != old
    (event,) = record(customer)
    receiver.secret = old  # a receiver not yet switched keeps verifying
    assert services.event_deliver(event_pk=event.pk) == "delivered"
    assert len(receiver.deliveries[-1]["signature"].split(" ")) == 2
    assert receiver.deliveries[-1]["valid"] is True
    with freeze_time(timedelta(hours=25), tick=True):
        (later,) = record(customer, order_ref=2)
        receiver.secret = old
        services.event_deliver(event_pk=later.pk)
        assert receiver.deliveries[-1]["valid"] is False  # the old secret stopped signing
        assert len(receiver.deliveries[-1]["signature"].split(" ")) == 1
