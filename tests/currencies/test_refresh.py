"""Rates refreshed from the local rates simulator: applied, held, refused, kept when the source fails."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from currencies.models import Currency, RateChange
from currencies.selectors import currencies_offered, rate_quote
from currencies.services import CurrencyError, currency_set_rate, rates_refresh
from currencies.tasks import rates_refresh_task
from tests.currencies.conftest import make_currency
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
D = Decimal


def rate_of(code: str) -> Decimal | None:
    return Currency.objects.get(code=code).rate


def test_a_first_refresh_applies_the_sources_rates_with_history(rates_sim):
    make_currency("EUR", None)
    make_currency("IDR", None, decimals=0)
    result = rates_refresh()
    assert (result.error, sorted(result.applied)) == ("", ["EUR", "IDR"])
    assert rate_of("EUR") == D("0.9187") and rate_of("IDR") == D("15652.5")
    assert RateChange.objects.filter(status=RateChange.Status.APPLIED).count() == 2
    assert rates_sim.requests == ["/api/latest.json"]


@pytest.mark.parametrize(
    ("path", "param"), [("/api/latest.json", "app_id"), ("/latest?base=EUR", "app_id"), ("/eurofxref-daily.xml", "")]
)
def test_every_shape_of_the_simulator_gives_the_same_usd_rates(rates_sim, settings, path, param):
    settings.CURRENCY_RATES_URL = rates_sim.base_url + path
    make_currency("EUR", None)
    make_currency("GBP", None)
    assert not rates_refresh().error
    assert abs(rate_of("EUR") - D("0.9187")) < D("0.00001")
    assert abs(rate_of("GBP") - D("0.7862")) < D("0.00001")


def test_a_wrong_api_key_changes_nothing(rates_sim, settings):
    make_currency("EUR", "0.9")
    settings.CURRENCY_RATES_API_KEY = "wrong"
    result = rates_refresh()
    assert "HTTP 401" in result.error and rate_of("EUR") == D("0.9")


@pytest.mark.parametrize("mode", ["error", "garbage", "slow"])
def test_a_failing_source_keeps_the_last_good_rate(rates_sim, mode):
    make_currency("EUR", "0.9")
    rates_sim.control({"action": "faults", "mode": mode, "delay": 3})
    result = rates_refresh()
    assert result.error
    assert rate_of("EUR") == D("0.9")
    assert not RateChange.objects.exists()


def test_a_source_that_is_down_keeps_the_last_good_rate(rates_sim, settings):
    make_currency("EUR", "0.9")
    rates_sim.stop()
    assert "could not be reached" in rates_refresh().error
    assert rate_of("EUR") == D("0.9")


def test_absurd_jumps_are_held_for_review_not_applied(rates_sim):
    make_currency("EUR", "0.9")
    rates_sim.control({"action": "faults", "mode": "absurd"})
    result = rates_refresh()
    assert result.held == ["EUR"]
    currency = Currency.objects.get(code="EUR")
    assert currency.rate == D("0.9") and currency.held_rate == D("918.7")
    assert RateChange.objects.get().status == RateChange.Status.HELD
    rates_refresh()  # the same held value again: one history row
    assert RateChange.objects.count() == 1


def test_a_small_move_is_applied(rates_sim):
    make_currency("EUR", "0.85")  # 0.9187 is 8 % away
    assert rates_refresh().applied == ["EUR"]
    assert rate_of("EUR") == D("0.9187")


def test_zero_negative_and_non_numeric_rates_are_refused(rates_sim):
    for code in ("BRL", "EUR", "GBP", "IDR"):
        make_currency(code, "1")
    rates_sim.control({"action": "faults", "mode": "nonsense"})
    result = rates_refresh()
    assert set(result.refused) == {"BRL", "EUR", "GBP", "IDR"} and not result.applied
    assert {c.rate for c in Currency.objects.all()} == {D(1)}


def test_manual_currencies_are_left_alone_by_the_source(rates_sim):
    make_currency("EUR", "0.5", source=Currency.Source.MANUAL)
    rates_refresh()
    assert rate_of("EUR") == D("0.5")


def test_staff_set_a_rate_by_hand_with_history():
    staff = UserFactory(is_staff=True)
    currency = make_currency("EUR", "0.9")
    currency_set_rate(currency_id=currency.pk, rate="0.95", actor=staff, reason="bank rate")
    currency.refresh_from_db()
    assert (currency.rate, currency.source) == (D("0.95"), Currency.Source.MANUAL)
    change = RateChange.objects.get()
    assert (change.old_rate, change.new_rate, change.actor, change.reason) == (D("0.9"), D("0.95"), staff, "bank rate")
    for bad in ("0", "-1", "abc", "1e-20"):
        with pytest.raises(CurrencyError):
            currency_set_rate(currency_id=currency.pk, rate=bad, actor=staff)
    assert rate_of("EUR") == D("0.95")


def test_a_stale_rate_is_neither_offered_nor_quoted(settings):
    settings.CURRENCY_RATES_STALE_HOURS = 48
    currency = make_currency("EUR", "0.9")
    assert currencies_offered() == [currency] and rate_quote(code="EUR") == D("0.9")
    Currency.objects.filter(pk=currency.pk).update(updated_at=timezone.now() - timedelta(hours=49))
    assert currencies_offered() == []
    with pytest.raises(CurrencyError):
        rate_quote(code="EUR")
    # A rate staff set by hand does not age.
    Currency.objects.filter(pk=currency.pk).update(source=Currency.Source.MANUAL)
    assert rate_quote(code="EUR") == D("0.9")
    assert rate_quote(code="USD") == 1


def test_the_beat_task_is_a_no_op_without_a_source(settings):
    settings.CURRENCY_RATES_URL = ""
    assert rates_refresh_task() == "no rates source configured"


def test_the_beat_task_refreshes(rates_sim):
    make_currency("GBP", None)
    assert rates_refresh_task().startswith("1 applied")
    assert "currencies-rates-refresh" in __import__("django.conf").conf.settings.CELERY_BEAT_SCHEDULE
