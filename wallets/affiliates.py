"""Affiliates: each customer's referral code and the visits of its link."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import F

from .models import Affiliate

if TYPE_CHECKING:
    from accounts.models import User


class AffiliateError(Exception):
    """No referral code could be made; the message is for the customer."""


def affiliate_get_or_create(*, user: User) -> Affiliate:
    """The customer's referral code, created on first use."""
    found = Affiliate.objects.filter(user=user).first()
    if found is not None:
        return found
    for _ in range(5):
        try:
            with transaction.atomic():
                return Affiliate.objects.create(
                    user=user, code=secrets.token_urlsafe(8).replace("_", "x").replace("-", "y")
                )
        except IntegrityError:
            found = Affiliate.objects.filter(user=user).first()
            if found is not None:
                return found  # created concurrently
    raise AffiliateError("Could not create a referral code; please try again.")


def affiliate_record_visit(*, code: str) -> bool:
    """Count a visit of a referral link; False when the code is unknown."""
    return Affiliate.objects.filter(code=code).update(visits=F("visits") + 1) == 1
