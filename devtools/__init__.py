"""Dev tooling shared by chaos/, tests/bench/ and the tests: child processes, ports, the
provider simulator's control endpoint, and a PostgreSQL database per run.

Plain Python, not a Django app, and never imported by the panel itself.
"""
