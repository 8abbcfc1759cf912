"""Bootstrap 5 rendering of Django form fields: errors next to their field."""

from __future__ import annotations

from django import forms, template
from django.forms.boundfield import BoundField
from django.utils.safestring import SafeString

register = template.Library()


def _css_class(field: BoundField) -> str:
    widget = field.field.widget
    if isinstance(widget, forms.CheckboxInput | forms.RadioSelect | forms.CheckboxSelectMultiple):
        base = "form-check-input"
    elif isinstance(widget, forms.Select):
        base = "form-select"
    else:
        base = "form-control"
    return f"{base} is-invalid" if field.errors else base


@register.filter
def bs_widget(field: BoundField) -> SafeString:
    """The field's widget with Bootstrap's classes (and is-invalid when it has errors)."""
    attrs: dict[str, str | bool] = {
        "class": " ".join(filter(None, [field.field.widget.attrs.get("class", ""), _css_class(field)]))
    }
    if field.errors:
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{field.auto_id}_errors"
    elif field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}_help"
    return field.as_widget(attrs=attrs)


@register.filter
def is_checkbox(field: BoundField) -> bool:
    return isinstance(field.field.widget, forms.CheckboxInput)
