"""A local exchange-rates source for `make run` and the tests; see docs/simulator.md."""

from .simulator import RatesSimulator

__all__ = ["RatesSimulator"]
