"""A local BTCPay Server (Greenfield API) for `make run` and the tests; see docs/simulator.md."""

from simulators.btcpay.server import DEFAULT_KEY, DEFAULT_SECRET, DEFAULT_STORE, RATE, BTCPaySimulator, main

__all__ = ["DEFAULT_KEY", "DEFAULT_SECRET", "DEFAULT_STORE", "RATE", "BTCPaySimulator", "main"]
