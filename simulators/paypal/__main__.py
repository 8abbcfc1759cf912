"""`python -m simulators.paypal [--port 8910] [--webhook-url URL]`: run the PayPal simulator until Ctrl-C."""

from simulators.paypal.simulator import main

main()
