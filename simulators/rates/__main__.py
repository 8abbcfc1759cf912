"""`python -m simulators.rates [--port 8912]`: run the rates simulator until Ctrl-C."""

from simulators.rates.simulator import main

main()
