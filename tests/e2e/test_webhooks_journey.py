"""A customer sets a webhook URL on the API page, copies the secret shown once, sees a delivery
in the log and replays it, at desktop and phone widths."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress

from simulators.webhook_receiver import WebhookReceiver
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, UserFactory
from webhooks import services
from webhooks.models import Event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_customer_sets_a_webhook_and_replays_a_delivery(visitors: Any, settings: Any, monkeypatch: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr(services, "enqueue_deliver", lambda **kw: None)
    replayed: list[int] = []
    monkeypatch.setattr("webhooks.tasks.webhook_replay_task.delay", lambda **kw: replayed.append(kw["event_pk"]))
    customer = UserFactory(username="rita", email="rita@example.com")
    EmailAddress.objects.create(user=customer, email=customer.email, verified=True, primary=True)
    receiver = WebhookReceiver().start()
    try:
        rita = visitors("rita")
        rita.go("/accounts/login/")
        rita.page.fill("[name=login]", "rita")
        rita.page.fill("[name=password]", PASSWORD)
        rita.page.get_by_role("button", name="Sign In").click()
        rita.page.wait_for_load_state()
        rita.go("/api/")
        rita.page.fill("#webhook-url", receiver.url)
        rita.page.locator("#webhooks button[type=submit]").first.click()
        rita.page.wait_for_load_state()
        secret = rita.page.locator("#webhook-secret").input_value()
        assert secret.startswith("whsec_")
        rita.shoot("webhook-secret")
        receiver.secret = secret

        services.webhook_events_record(
            events=[services.NewEvent(user_id=customer.pk, type=services.ORDER_UPDATED, order_ref=7, data={"order": 7})]
        )
        event = Event.objects.get()
        assert services.event_deliver(event_pk=event.pk) == "delivered"
        assert receiver.deliveries[0]["valid"] is True

        rita.go("/api/")
        assert secret not in rita.page.content()
        rita.page.locator("#webhooks summary").click()
        rita.shoot("api-webhooks")
        rita.page.set_viewport_size({"width": 360, "height": 800})
        assert rita.page.locator("#webhook-url").is_visible()
        SCREENSHOTS.mkdir(exist_ok=True)
        rita.page.locator("#webhooks").screenshot(path=str(SCREENSHOTS / "api-webhooks-section-phone.png"))
        # The section is no wider than the phone: nothing scrolls sideways.
        assert rita.page.evaluate("() => document.documentElement.scrollWidth") <= 360
        rita.page.set_viewport_size({"width": 1280, "height": 900})
        rita.go("/webhooks/")
        rita.shoot("webhook-log")
        rita.page.get_by_role("button", name="Replay").click()
        rita.page.wait_for_load_state()
        assert replayed == [event.pk]
        assert not rita.errors
    finally:
        receiver.stop()
