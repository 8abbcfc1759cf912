from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("Webhook URL"),
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/smm-webhook", "inputmode": "url"}),
    )
