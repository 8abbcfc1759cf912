"""The provider simulator: an upstream SMM provider speaking API v2, with fault modes.

The manual (actions, order progression, faults, dialect, control commands) is
docs/simulator.md. Run it with `python -m simulators.provider --port 8900` or
`python manage.py simulator`; in-process, `Simulator(seed=1).start(port=0)`.

Modules: catalogue (the generated services), state (vocabulary and state), wire (parameter
parsing, JSON), http (server and handler), listener (listen, refuse, recover), progression
(how orders and refills move), actions (API v2), control (control commands), simulator
(the class), cli (options, the foreground run).
"""

from simulators.provider.catalogue import DEFAULT_SERVICES, SimService, generate_catalogue
from simulators.provider.cli import add_arguments, from_options, main, serve
from simulators.provider.simulator import Simulator
from simulators.provider.state import (
    ACTIONS,
    DEFAULT_BALANCE,
    DEFAULT_KEYS,
    DEFAULT_SPEED,
    FAULT_MODES,
    ControlError,
    Fault,
    SimOrder,
    SimRefill,
)
from simulators.provider.wire import parse_params

__all__ = [
    "ACTIONS",
    "DEFAULT_BALANCE",
    "DEFAULT_KEYS",
    "DEFAULT_SERVICES",
    "DEFAULT_SPEED",
    "FAULT_MODES",
    "ControlError",
    "Fault",
    "SimOrder",
    "SimRefill",
    "SimService",
    "Simulator",
    "add_arguments",
    "from_options",
    "generate_catalogue",
    "main",
    "parse_params",
    "serve",
]
