"""`python -m simulators.provider [--port 8900] ...`: run the provider simulator until Ctrl-C."""

from simulators.provider.cli import main

main()
