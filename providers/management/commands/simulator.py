"""`python manage.py simulator`: run the provider simulator (simulators.provider) until Ctrl-C.

The simulator is a dev tool outside the apps; this command stays here because a management
command needs an installed app, and `make run` and the demo seed know the panel by manage.py.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from simulators.provider import cli


class Command(BaseCommand):
    help = "Run the provider simulator: an upstream SMM provider speaking API v2, with fault modes."
    # It needs no database: no checks, so it starts in a fraction of a second under `make run`.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        cli.serve(options, write=write)
