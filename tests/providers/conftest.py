"""The provider simulator as a fixture: a fresh upstream provider on a free port per test.

`simulator` is manual and unsurprising: orders move only when a test calls
`simulator.advance_all()` (or `simulator.set_speed(0.05)`), and every order ends Completed
unless the test forces another outcome (`force_status`, `set_outcome`, `set_outcomes`).
`make_simulator(**options)` starts one with other options (dialect=True, services=5000, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from providers.simulator import Simulator

MANUAL = {"speed": None, "partial": 0.0, "canceled": 0.0, "refill_rejected": 0.0}


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def make(**options: Any) -> Simulator:
        sim = Simulator(**{**MANUAL, **options}).start(host="127.0.0.1", port=0)
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def simulator(make_simulator: Callable[..., Simulator]) -> Simulator:
    return make_simulator()
