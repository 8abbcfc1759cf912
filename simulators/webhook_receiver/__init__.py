"""A local webhook receiver: checks Standard Webhooks signatures and records deliveries."""

from simulators.webhook_receiver.receiver import WebhookReceiver

__all__ = ["WebhookReceiver"]
