from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from currencies.models import Currency
from simulators.rates import RatesSimulator


@pytest.fixture
def rates_sim(settings: Any) -> Iterator[RatesSimulator]:
    simulator = RatesSimulator().start()
    settings.CURRENCY_RATES_URL = f"{simulator.base_url}/api/latest.json"
    settings.CURRENCY_RATES_API_KEY = simulator.api_key
    settings.CURRENCY_RATES_API_KEY_PARAM = "app_id"
    settings.CURRENCY_RATES_ALLOW_PRIVATE_URL = True
    settings.CURRENCY_RATES_READ_TIMEOUT = 1.0
    settings.CURRENCY_RATES_MAX_JUMP_PERCENT = Decimal("20")
    settings.CURRENCY_RATES_STALE_HOURS = 48
    yield simulator
    simulator.stop()


def make_currency(code: str = "EUR", rate: str | None = "0.9", **fields: Any) -> Currency:
    defaults: dict[str, Any] = {"name": code, "decimals": 2, "source": Currency.Source.AUTOMATIC}
    defaults.update(fields)
    return Currency.objects.create(
        code=code,
        rate=None if rate is None else Decimal(rate),
        updated_at=timezone.now() if rate is not None else None,
        **defaults,
    )
