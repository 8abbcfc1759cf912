"""The simulator fixtures live in tests/conftest.py; re-exported for modules importing them here."""

from tests.conftest import make_simulator, simulator

__all__ = ["make_simulator", "simulator"]
