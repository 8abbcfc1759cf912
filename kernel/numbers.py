"""Whole numbers from outside (API parameters, forms, query strings, admin search): one parser.

Python's `int()` takes far more than a person types as a number: other scripts' digits
(`int("١٢") == 12`), underscores (`int("1_0") == 10`), signs and Unicode spaces, while
`str.isdigit()` also passes superscripts (`"²"`) that `int()` then refuses with a
ValueError. Everything that reads a number from a request goes through `parse_int`, which
takes ASCII digits only.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from .money import DECIMAL_TEXT

# Enough for any BigIntegerField (9,223,372,036,854,775,807 has 19 digits).
DEFAULT_MAX_DIGITS = 18
_ASCII_SPACE = " \t\r\n\f\v"
_DIGITS = re.compile(r"[0-9]+", flags=re.ASCII)


class InvalidNumber(ValueError):
    """The value is present but is not a whole number within the bounds."""


def parse_int(
    value: Any,
    *,
    min: int | None = None,
    max: int | None = None,
    max_digits: int = DEFAULT_MAX_DIGITS,
) -> int:
    """A whole number written with the ASCII digits 0-9 (surrounding ASCII spaces allowed).

    No sign, no underscore, no decimal point, no other script's digits. Leading zeros are
    allowed and do not count as digits (`0040` is 40). Raises InvalidNumber for anything
    else, an empty value included; a Python int (not a bool) is taken as is.
    """
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= max_digits:
        # The common case, plain ASCII digits (an API `status` reads 100 of them): int() of
        # such text is exactly what the checks below would accept.
        number = int(value)
    elif isinstance(value, bool):
        raise InvalidNumber("not a number")
    elif isinstance(value, int):
        number = value
    else:
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                raise InvalidNumber("not a number") from None
        if not isinstance(value, str):
            raise InvalidNumber("not a number")
        text = value.strip(_ASCII_SPACE)
        # The length check first: a huge string is refused before any matching.
        if len(text) > max_digits + 32 or not _DIGITS.fullmatch(text):
            raise InvalidNumber("not a number")
        if len(text.lstrip("0")) > max_digits:
            raise InvalidNumber("too many digits")
        number = int(text)
    if min is not None and number < min:
        raise InvalidNumber(f"less than {min}")
    if max is not None and number > max:
        raise InvalidNumber(f"more than {max}")
    return number


def int_or_none(
    value: Any,
    *,
    min: int | None = None,
    max: int | None = None,
    max_digits: int = DEFAULT_MAX_DIGITS,
) -> int | None:
    """`parse_int`, with None for a missing or invalid value (for optional GET parameters)."""
    try:
        return parse_int(value, min=min, max=max, max_digits=max_digits)
    except InvalidNumber:
        return None


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip(_ASCII_SPACE) == "")


class WholeNumberField(forms.IntegerField):
    """forms.IntegerField that reads only ASCII digits (see `parse_int`).

    Django's own IntegerField runs `int()` on the text, so it takes `١٢` as 12 and `1_0`
    as 10. Signs are refused too: every number a customer types here is a count or an id.
    """

    default_error_messages = {"invalid": "Enter a whole number (digits 0-9 only)."}

    def __init__(self, *, max_digits: int = DEFAULT_MAX_DIGITS, **kwargs: Any) -> None:
        self.max_digits = max_digits
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values or is_blank(value):
            return None
        try:
            return parse_int(value, max_digits=self.max_digits)
        except InvalidNumber:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class DecimalAmountField(forms.DecimalField):
    """forms.DecimalField that reads only ASCII numbers: Decimal() takes `١٠` as 10 too."""

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        if isinstance(value, str) and not is_blank(value) and not DECIMAL_TEXT.fullmatch(value.strip(_ASCII_SPACE)):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IdChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """forms.ModelChoiceField whose submitted id must be ASCII digits: the database field
    would otherwise run `int()` on it and find row 1 for `١`."""

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values or is_blank(value):
            return None
        model = self.queryset.model if self.queryset is not None else None
        if not (model is not None and isinstance(value, model)) and int_or_none(value) is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class WholeNumberFilter(django_filters.NumberFilter):  # type: ignore[misc]  # django-filter has no types
    field_class = WholeNumberField


class IdChoiceFilter(django_filters.ModelChoiceFilter):  # type: ignore[misc]  # django-filter has no types
    field_class = IdChoiceField
