"""`python -m simulators.btcpay [--port 8910] ...`: run the BTCPay Server simulator until Ctrl-C."""

from simulators.btcpay.server import main

main()
