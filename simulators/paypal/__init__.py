"""A local PayPal (Orders API v2 and webhooks) for `make run` and the tests; see docs/simulator.md."""

from .simulator import PayPalSimulator

__all__ = ["PayPalSimulator"]
