"""The one number parser: ASCII digits only, whatever Python's int() would also take."""

from __future__ import annotations

import pytest
from django import forms

from kernel.numbers import InvalidNumber, WholeNumberField, int_or_none, parse_int


@pytest.mark.parametrize(
    "text, number",
    [
        ("0", 0),
        ("7", 7),
        (" 42 ", 42),
        ("\t100\n", 100),
        ("0040", 40),
        ("123456789012345678", 123456789012345678),
        # 19 characters, 18 digits after the leading zero: past the plain-digits shortcut
        ("0123456789012345678", 123456789012345678),
        ("0" * 40 + "7", 7),
    ],
)
def test_ascii_digits_are_numbers(text, number):
    assert parse_int(text) == number


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "²",  # isdigit() says yes, int() raises
        "1²",
        "١",  # Arabic-Indic one: int() takes it as 1
        "١٢٣",
        "１２",  # fullwidth
        "৩",  # Bengali
        "1_0",  # int() takes it as 10
        "+5",
        "-5",
        "1.0",
        "1e3",
        "0x10",
        "1 0",
        "\u00a05",  # a non-ASCII space around it
        "5\u2003",
        "1\x00",
        "\ud800",
        "1234567890123456789",  # 19 digits: more than a bigint column can hold for sure
        "9" * 5000,
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(InvalidNumber):
        parse_int(text)
    assert int_or_none(text) is None


def test_bounds_and_types():
    assert parse_int(5, min=1, max=5) == 5
    with pytest.raises(InvalidNumber):
        parse_int("0", min=1)
    with pytest.raises(InvalidNumber):
        parse_int("6", max=5)
    with pytest.raises(InvalidNumber):
        parse_int(True)
    with pytest.raises(InvalidNumber):
        parse_int(1.0)
    with pytest.raises(InvalidNumber):
        parse_int(None)
    assert parse_int(b"12") == 12
    assert int_or_none("123", max_digits=2) is None
    assert parse_int("000000000000000000000000001") == 1


class _Form(forms.Form):
    quantity = WholeNumberField(required=False, min_value=1)


@pytest.mark.parametrize("text", ["²", "١٠٠", "1_0", "-1", "1.5", "5\x00"])
def test_form_field_refuses_what_int_takes(text):
    form = _Form({"quantity": text})
    assert not form.is_valid()
    assert "quantity" in form.errors


def test_form_field_reads_ascii_digits():
    form = _Form({"quantity": " 100 "})
    assert form.is_valid() and form.cleaned_data["quantity"] == 100
    empty = _Form({"quantity": ""})
    assert empty.is_valid() and empty.cleaned_data["quantity"] is None


@pytest.mark.parametrize("text", ["١٠", "1_0", "１０", "²", "1e999999", "NaN", "Infinity", "0x10", "10\x00"])
def test_money_parser_refuses_what_decimal_would_also_take(text):
    from kernel.money import MoneyFormatError, to_decimal

    with pytest.raises(MoneyFormatError):
        to_decimal(text)


@pytest.mark.parametrize("value", ["0.90", " 12 ", "-3.5", "1e-05", 0.9, 7, ".5", "5."])
def test_money_parser_reads_what_providers_write(value):
    from decimal import Decimal

    from kernel.money import to_decimal

    assert to_decimal(value) == Decimal(str(value).strip())


@pytest.mark.parametrize("text", ["١٠", "1_0", "²", "10\x00"])
def test_deposit_amounts_are_ascii_numbers(text):
    from wallets.gateways.manual import ManualDepositForm

    form = ManualDepositForm({"amount": text, "reference": "r"})
    assert not form.is_valid() and "amount" in form.errors
    assert ManualDepositForm({"amount": "10.50", "reference": "r"}).is_valid()


@pytest.mark.django_db
def test_number_filter_refuses_what_int_would_take():
    import django_filters

    from catalog.models import Service
    from kernel.numbers import WholeNumberFilter
    from tests.factories import ServiceFactory

    class MinFilter(django_filters.FilterSet):
        min_quantity = WholeNumberFilter()

        class Meta:
            model = Service
            fields: list[str] = []

    ServiceFactory(min_quantity=10)
    assert MinFilter({"min_quantity": "10"}, queryset=Service.objects.all()).qs.count() == 1
    for text in ("١٠", "1_0", "²"):
        hostile = MinFilter({"min_quantity": text}, queryset=Service.objects.all())
        assert not hostile.is_valid() and "min_quantity" in hostile.errors
