"""Forms check shape only; orders.services.order_place enforces the business rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from django import forms

from kernel import protocol
from kernel.numbers import WholeNumberField

MAX_LIST_TEXT = 100_000
MAX_MASS_LINES = 500
TEXTAREA = {"rows": 4, "class": "form-control"}
# Django decodes form data with replacement characters: bytes that are not UTF-8 (such as
# %ED%A0%80, an encoded lone surrogate) arrive as U+FFFD. No link, username or list item
# a provider takes has one, so an order holding it is refused rather than sent upstream.
NOT_UTF8 = "\ufffd"
NOT_UTF8_ERROR = "This text holds bytes that are not UTF-8; type it again."


def _text(label: str, *, max_length: int = 500, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=max_length,
        help_text=help_text,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )


def _list(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=MAX_LIST_TEXT,
        help_text="One per line",
        widget=forms.Textarea(attrs=TEXTAREA),
    )


def _number(label: str, *, min_value: int = 0, max_value: int | None = None) -> WholeNumberField:
    return WholeNumberField(
        label=label,
        required=False,
        min_value=min_value,
        max_value=max_value,
        widget=forms.NumberInput(attrs={"class": "form-control"}),
    )


class NewOrderForm(forms.Form):
    # A token generated with the page: submitting the same page twice places one order.
    token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=40)
    service = WholeNumberField(min_value=1, widget=forms.Select(attrs={"class": "form-select"}))
    link = _text("Link", max_length=2000)
    quantity = _number("Quantity")
    dripfeed = forms.BooleanField(label="Drip-feed", required=False)
    runs = _number("Runs", min_value=1)
    interval = _number("Interval (minutes)", min_value=1)
    comments = _list("Comments")
    usernames = _list("Usernames")
    hashtags = _list("Hashtags")
    keywords = _list("Keywords")
    groups = _list("Groups")
    hashtag = _text("Hashtag")
    username = _text("Username")
    # The API v2 name; the form metaclass moves fields into base_fields, so Form.media stays.
    media = _text("Media link", max_length=2000)  # type: ignore[assignment]
    answer_number = _number("Answer number", min_value=1)
    country = _text("Country")
    device = forms.TypedChoiceField(
        label="Device",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any"), (1, "1"), (2, "2"), (3, "3"), (4, "4"), (5, "5")],
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    type_of_traffic = forms.TypedChoiceField(
        label="Type of traffic",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any"), (1, "1"), (2, "2"), (3, "3")],
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    google_keyword = _text("Google keyword")
    referring_url = _text("Referring URL", max_length=2000)
    min = _number("Min per post")
    max = _number("Max per post")
    posts = _number("New posts")
    old_posts = _number("Old posts")
    delay = forms.TypedChoiceField(
        label="Delay (minutes)",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—")] + [(d, str(d)) for d in protocol.SUBSCRIPTION_DELAYS],
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    expiry = forms.DateField(
        label="Expiry", required=False, widget=forms.DateInput(attrs={"type": "date", "class": "form-control"})
    )

    TYPE_FIELDS = frozenset(f for t in protocol.SERVICE_TYPES for f in t.fields)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, value in list(data.items()):
            if isinstance(value, str) and NOT_UTF8 in value:
                self.add_error(name, NOT_UTF8_ERROR)
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
        label="Orders",
        max_length=MAX_MASS_LINES * 2100,
        help_text="One order per line: service_id|link|quantity",
        widget=forms.Textarea(attrs={"rows": 12, "class": "form-control font-monospace"}),
    )

    def clean_orders(self) -> list[MassLine]:
        if NOT_UTF8 in self.cleaned_data["orders"]:
            raise forms.ValidationError(NOT_UTF8_ERROR)
        lines = [line.strip() for line in self.cleaned_data["orders"].splitlines()]
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line]
        if not numbered:
            raise forms.ValidationError("Enter at least one order.")
        if len(numbered) > MAX_MASS_LINES:
            raise forms.ValidationError(f"At most {MAX_MASS_LINES} orders at once.")
        result = []
        for number, line in numbered:
            parts = line.split("|")
            if len(parts) < 3:
                result.append(MassLine(number, line, "", "", "", problem="Write the line as service_id|link|quantity"))
                continue
            # The link is everything between the first and the last bar (links may hold bars).
            link = "|".join(parts[1:-1]).strip()
            result.append(MassLine(number, line, parts[0].strip(), link, parts[-1].strip()))
        return result
