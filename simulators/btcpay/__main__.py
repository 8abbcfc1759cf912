"""`python -m simulators.btcpay [--port 8911] ...`: run the BTCPay Server simulator until Ctrl-C."""

from simulators.btcpay.server import main

main()
