"""Local stand-ins of the outside parties the panel talks to, for development and tests.

Dev tools, not part of the deployed panel: framework-free (stdlib plus `kernel`), no ORM.
`simulators.provider` is an upstream SMM provider speaking API v2 (docs/simulator.md).
"""
