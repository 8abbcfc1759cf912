"""A local stand-in for NOWPayments: invoices, a hosted invoice page, payments and signed IPNs.

Framework-free (stdlib only). Started in-process by the tests and as a process by
`make run` (`python -m simulators.nowpayments`). The manual is docs/simulator.md.
"""

from simulators.nowpayments.simulator import NowPaymentsSimulator

__all__ = ["NowPaymentsSimulator"]
