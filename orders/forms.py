"""Forms check shape only; orders.services.order_place enforces the business rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from kernel import protocol
from kernel.numbers import WholeNumberField

from .services.parsing import link_complete

MAX_LIST_TEXT = 100_000
MAX_MASS_LINES = 500
TEXTAREA = {"rows": 4, "class": "form-control"}
# Django decodes form data with replacement characters: bytes that are not UTF-8 (such as
# %ED%A0%80, an encoded lone surrogate) arrive as U+FFFD. No link, username or list item
# a provider takes has one, so an order holding it is refused rather than sent upstream.
NOT_UTF8 = "\ufffd"
NOT_UTF8_ERROR = _("This text holds bytes that are not UTF-8; type it again.")


def type_field(spec: protocol.FieldSpec) -> forms.Field:
    """The form field of one API v2 order field, from the protocol's field table."""
    if spec.kind == protocol.FIELD_LIST:
        return forms.CharField(
            label=_(spec.label),
            required=False,
            max_length=MAX_LIST_TEXT,
            help_text=_("One per line"),
            widget=forms.Textarea(attrs=TEXTAREA),
        )
    if spec.kind == protocol.FIELD_NUMBER:
        attrs = {"class": "form-control", "inputmode": "numeric"}
        return WholeNumberField(
            label=_(spec.label),
            required=False,
            min_value=spec.minimum,
            max_value=spec.maximum,
            widget=forms.NumberInput(attrs=attrs),
        )
    if spec.kind == protocol.FIELD_CHOICE:
        # The first choice is the default, so the form is valid as it comes.
        return forms.TypedChoiceField(
            label=_(spec.label),
            required=False,
            coerce=int,
            empty_value=None,
            initial=spec.choices[0],
            choices=[(c, str(c)) for c in spec.choices],
            widget=forms.Select(attrs={"class": "form-select"}),
        )
    if spec.kind == protocol.FIELD_DATE:
        return forms.DateField(
            label=_(spec.label), required=False, widget=forms.DateInput(attrs={"type": "date", "class": "form-control"})
        )
    return forms.CharField(
        label=_(spec.label),
        required=False,
        max_length=spec.max_length,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )


class NewOrderForm(forms.Form):
    # A token generated with the page: submitting the same page twice places one order.
    token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=40)
    service = WholeNumberField(min_value=1, widget=forms.Select(attrs={"class": "form-select"}))
    dripfeed = forms.BooleanField(label=_("Drip-feed"), required=False)
    # Then every API v2 order field, added below from the protocol's field table.

    TYPE_FIELDS = frozenset(f for t in protocol.SERVICE_TYPES for f in t.fields)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, value in list(data.items()):
            if isinstance(value, str) and NOT_UTF8 in value:
                self.add_error(name, NOT_UTF8_ERROR)
        if data.get("link"):
            # What people paste (`instagram.com/reel/x`) becomes an https:// link.
            data["link"] = link_complete(data["link"])
        return data

    def api_fields(self) -> dict[str, Any]:
        """The API v2 fields of the order, as order_place takes them."""
        data = self.cleaned_data
        fields: dict[str, Any] = {}
        for name in self.TYPE_FIELDS:
            value = data.get(name)
            if name in ("runs", "interval") and not data.get("dripfeed"):
                continue
            if value is None or value == "":
                continue
            fields[name] = value.strftime("%d/%m/%Y") if name == "expiry" else value
        return fields

    def idempotency_key(self) -> str | None:
        token = self.cleaned_data.get("token") or ""
        return f"web-{token}" if token else None


# The type fields come from one table (kernel.protocol.FIELD_SPECS); `media` is one of them,
# so they are set on base_fields, where the Form.media property is not in the way.
NewOrderForm.base_fields.update({spec.name: type_field(spec) for spec in protocol.FIELD_SPECS})


def new_token() -> str:
    return uuid4().hex


@dataclass(frozen=True)
class MassLine:
    number: int
    text: str
    service_id: str
    link: str
    quantity: str
    problem: str = ""


class MassOrderForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=40)
    orders = forms.CharField(
        label=_("Orders"),
        max_length=MAX_MASS_LINES * 2100,
        help_text=_("One order per line: service_id|link|quantity"),
        widget=forms.Textarea(attrs={"rows": 12, "class": "form-control font-monospace"}),
    )

    def clean_orders(self) -> list[MassLine]:
        if NOT_UTF8 in self.cleaned_data["orders"]:
            raise forms.ValidationError(NOT_UTF8_ERROR)
        lines = [line.strip() for line in self.cleaned_data["orders"].splitlines()]
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line]
        if not numbered:
            raise forms.ValidationError(_("Enter at least one order."))
        if len(numbered) > MAX_MASS_LINES:
            raise forms.ValidationError(_("At most %(count)s orders at once.") % {"count": MAX_MASS_LINES})
        result = []
        for number, line in numbered:
            parts = line.split("|")
            if len(parts) < 3:
                result.append(
                    MassLine(number, line, "", "", "", problem=gettext("Write the line as service_id|link|quantity"))
                )
                continue
            # The link is everything between the first and the last bar (links may hold bars).
            link = link_complete("|".join(parts[1:-1]).strip())
            result.append(MassLine(number, line, parts[0].strip(), link, parts[-1].strip()))
        return result
