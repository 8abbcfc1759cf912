"""The states of a payment, apart from the model so gateways can map onto them.

A gateway's own vocabulary (Stripe's `paid`, BTCPay's `Settled`, PayPal's `COMPLETED`)
is translated into these by the gateway's state map; nothing else reads gateway states.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    FAILED = "failed", _("Failed")
    # Some (partly) or all (refunded) of what was credited was taken back by the gateway.
    PARTLY_REFUNDED = "partly_refunded", _("Partly refunded")
    REFUNDED = "refunded", _("Refunded")
