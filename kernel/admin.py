"""Admin helpers shared by the panel's long lists."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _


class QuickActionCheckbox:
    """A ModelAdmin mixin: each row's action checkbox written directly, the markup Django's
    own `action_checkbox` renders through a form widget's template (a fifth of a 50-row
    order list's time went to those 50 widget renders)."""

    def action_checkbox(self, obj: Any) -> SafeString:
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(_("Select this object for an action - {}"), str(obj)),
        )
