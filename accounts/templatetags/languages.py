"""`{% languages as choices %}`: the panel's languages, each named in its own language.

Django's get_available_languages translates the names ("English" reads "Английский" on a
Russian page); a switcher must show every name as its own speakers write it."""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def languages() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]
