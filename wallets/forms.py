from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from kernel.numbers import DecimalAmountField

ADJUST_KEY_RE = re.compile(r"^adjust:[0-9a-f]{32}$")


class AdjustForm(forms.Form):
    """Staff add (positive amount) or deduct (negative amount) funds, with a reason."""

    user = forms.ModelChoiceField(
        queryset=User.objects.all(), to_field_name="username", widget=forms.TextInput, help_text="Username."
    )
    amount = DecimalAmountField(max_digits=18, decimal_places=5, help_text="Positive adds funds, negative deducts.")
    reason = forms.CharField(max_length=255, help_text="Recorded in the ledger and shown to the customer.")
    # Generated when the form is shown: submitting it twice adjusts once.
    key = forms.CharField(widget=forms.HiddenInput)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("The amount must not be zero.")
        return amount

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if not ADJUST_KEY_RE.match(key):
            raise forms.ValidationError("Reload the form and try again.")
        return key


FORGIVE_KEY_RE = re.compile(r"^forgive:[0-9a-f]{32}$")


class ForgiveDebtForm(forms.Form):
    """Staff write off everything a customer owes, with a reason."""

    user = forms.ModelChoiceField(
        queryset=User.objects.all(), to_field_name="username", widget=forms.TextInput, help_text=_("Username.")
    )
    reason = forms.CharField(max_length=200, help_text=_("Recorded in the ledger with your name."))
    # Generated when the form is shown: submitting it twice forgives once.
    key = forms.CharField(widget=forms.HiddenInput)

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if not FORGIVE_KEY_RE.match(key):
            raise forms.ValidationError(_("Reload the form and try again."))
        return key
