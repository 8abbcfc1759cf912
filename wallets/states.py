"""The states of a payment, apart from the model so gateways can map onto them.

A gateway's own vocabulary (Stripe's `paid`, BTCPay's `Settled`, PayPal's `COMPLETED`)
is translated into these by the gateway's state map; nothing else reads gateway states.
"""

from __future__ import annotations

from django.db import models


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    # Some (partly) or all (refunded) of what was credited was taken back by the gateway.
    PARTLY_REFUNDED = "partly_refunded", "Partly refunded"
    REFUNDED = "refunded", "Refunded"
