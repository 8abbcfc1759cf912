from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from panel.money_display import DisplayCurrency, format_money, format_number, places_for


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("96.96294", "96.96"),
        ("0.0533", "0.053"),
        ("0.053300", "0.053"),
        ("0.5", "0.50"),
        ("0.00001", "0.00001"),
        ("0", "0.00"),
        ("1234567.891", "1,234,567.89"),
        ("-2.005", "-2.01"),
        ("18.876", "18.88"),
    ],
)
def test_one_rule_rounds_for_reading(value, shown):
    with translation.override("en"):
        assert format_number(Decimal(value)) == shown


def test_a_small_price_is_never_shown_as_zero():
    for text in ("0.004", "0.0004", "0.000001"):
        assert Decimal(format_number(Decimal(text)).replace(",", "")) != 0
    assert places_for(Decimal("0.0533"), 2) == 3
    assert places_for(Decimal("12.3456"), 0) == 0


@pytest.mark.django_db
def test_a_converted_amount_is_marked_approximate():
    eur = DisplayCurrency(code="EUR", rate=Decimal("0.92"), decimals=2)
    assert format_money(Decimal("10"), eur) == ("≈ 9.20 EUR", True)
    assert format_money(Decimal("10")) == ("10.00 USD", False)


@pytest.mark.django_db
def test_the_tag_keeps_the_exact_value_in_the_title_and_escapes_nothing_unsafe():
    template = Template(
        "{% load panel_money %}{% money amount %}|{% money amount exact=True %}|"
        "{% money amount plain=True %}|{% money paid currency='EUR' plain=True %}"
    )
    with translation.override("en"):
        html = template.render(Context({"amount": Decimal("96.96294"), "paid": Decimal("5.5")}))
    first, exact, plain, paid = html.split("|")
    assert 'title="96.96294 USD"' in first and ">96.96 USD<" in first
    assert ">96.96294 USD<" in exact
    assert plain == "96.96 USD"
    assert paid == "5.50 EUR"


@pytest.mark.django_db
def test_the_display_currency_in_the_context_converts():
    template = Template("{% load panel_money %}{% money amount plain=True %}")
    context = Context({"amount": Decimal("100"), "display_currency": DisplayCurrency("TRY", Decimal("34.5"))})
    with translation.override("en"):
        assert template.render(context) == "≈ 3,450.00 TRY"


@pytest.mark.parametrize(("value", "shown"), [("12", "12"), ("12.50", "12.5"), ("0.125", "0.13"), ("7.00", "7")])
def test_a_percentage_drops_the_zeros_people_do_not_write(value, shown):
    template = Template("{% load panel_money %}{{ value|percent }}")
    with translation.override("en"):
        assert template.render(Context({"value": Decimal(value)})) == shown
