from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.adapter import AccountAdapter
from wallets.referral import referral_attribute


class PanelAccountAdapter(AccountAdapter):
    """The accounts adapter with what the apps above accounts do at sign-up."""

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        user = super().save_user(request, user, form, commit=False)
        referral_attribute(request=request, user=user)
        if commit:
            user.save()
        return user
