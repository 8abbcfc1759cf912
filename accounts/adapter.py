from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up hooks: referral attribution."""

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        # Imported here: accounts must load before the wallets app.
        from wallets.selectors import affiliate_referrer_for_code
        from wallets.services import REFERRAL_SESSION_KEY

        user = super().save_user(request, user, form, commit=False)
        session = getattr(request, "session", None)
        code = session.pop(REFERRAL_SESSION_KEY, None) if session is not None else None
        if code and user.referred_by_id is None:
            referrer = affiliate_referrer_for_code(code=str(code))
            if referrer is not None and referrer.pk != user.pk:
                user.referred_by = referrer
        if commit:
            user.save()
        return user
