from decimal import Decimal as D

import pytest

from catalog.pricing import (
    cost_per_1000,
    decide_price_change,
    effective_markup,
    price_for_customer,
    selling_price,
)


def test_markup_prefers_service_then_category_then_default():
    assert effective_markup(service_markup=D("10"), category_markup=D("20"), default_markup=D("30")) == D("10")
    assert effective_markup(service_markup=None, category_markup=D("20"), default_markup=D("30")) == D("20")
    assert effective_markup(service_markup=None, category_markup=None, default_markup=D("30")) == D("30")
    # Zero is a real markup, not "unset".
    assert effective_markup(service_markup=D("0"), category_markup=D("20"), default_markup=D("30")) == D("0")


def test_cost_converts_currency_and_rounds_to_six_places():
    assert cost_per_1000(upstream_rate=D("0.9"), exchange_rate=D("1.1")) == D("0.990000")
    assert cost_per_1000(upstream_rate=D("0.0000015"), exchange_rate=D("1")) == D("0.000002")


def test_selling_price_applies_markup_or_fixed_price():
    assert selling_price(cost=D("1.000000"), markup_percent=D("30")) == D("1.300000")
    assert selling_price(cost=D("0.123457"), markup_percent=D("12.5")) == D("0.138889")
    assert selling_price(cost=D("1"), markup_percent=D("30"), fixed_price=D("5")) == D("5.000000")


def test_customer_discount_applies_on_top():
    assert price_for_customer(price=D("2.000000"), discount_percent=D("10")) == D("1.800000")
    assert price_for_customer(price=D("2.000000"), discount_percent=D("0")) == D("2.000000")


def decide(**kw):
    base = dict(
        old_price=D("1.3"), old_cost=D("1"), markup_percent=D("30"), fixed_price=None, jump_threshold_percent=D("50")
    )
    base.update(kw)
    return decide_price_change(**base)


def test_unchanged_cost_is_unchanged():
    assert decide(new_cost=D("1")).action == "unchanged"


@pytest.mark.parametrize("new_cost", [D("0.5"), D("1.2"), D("1.5")])
def test_moderate_change_or_drop_is_followed(new_cost):
    decision = decide(new_cost=new_cost)
    assert decision.action == "apply"
    assert decision.price == selling_price(cost=new_cost, markup_percent=D("30"))


def test_jump_above_threshold_is_held():
    decision = decide(new_cost=D("1.51"))
    assert decision.action == "hold"
    assert decision.price == D("1.963000")
    assert "51.0%" in decision.reason


def test_fixed_price_below_new_cost_disables():
    decision = decide(old_price=D("2"), fixed_price=D("2"), new_cost=D("2.5"))
    assert decision.action == "disable"


def test_fixed_price_above_cost_is_kept():
    decision = decide(old_price=D("2"), fixed_price=D("2"), new_cost=D("1.5"))
    assert decision.action == "apply"
    assert decision.price == D("2.000000")


def test_first_pricing_of_a_new_service_is_never_held():
    decision = decide(old_price=D("0"), old_cost=D("0"), new_cost=D("100"))
    assert decision.action == "apply"
