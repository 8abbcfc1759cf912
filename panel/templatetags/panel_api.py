"""The API page's texts (api/spec.py marks them) in the customer's language."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext

from kernel import protocol

register = template.Library()


@register.filter
def api_text(text: str) -> str:
    """`text` translated, its `%(max)s` filled with the most ids one request may name."""
    translated = gettext(text) if text else ""
    return translated % {"max": protocol.MAX_IDS} if "%(max)s" in translated else translated
