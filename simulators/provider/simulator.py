"""The provider simulator as one object (docs/simulator.md)."""

from __future__ import annotations

from simulators.provider.control import ControlCommands


class Simulator(ControlCommands):
    """An upstream provider: state, the API v2 actions, faults, and the control commands.

    `Simulator(seed=1).start(port=0)`; `sim.url`, `sim.control_url`, `sim.stop()`.
    """
