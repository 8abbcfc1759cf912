from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.utils.translation import gettext_lazy as _


@cache
def timezone_choices() -> list[tuple[str, str]]:
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n or n == "UTC")
    return [(n, n.replace("_", " ")) for n in names]


class TimezoneForm(forms.Form):
    timezone = forms.ChoiceField(label=_("Time zone"), choices=timezone_choices)
