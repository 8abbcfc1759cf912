"""`python -m simulators.nowpayments [--port 8901]`: run the NOWPayments simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import threading

from simulators.nowpayments.simulator import DEMO_API_KEY, DEMO_IPN_SECRET, NowPaymentsSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="A local NOWPayments API, invoice page and IPN sender.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--api-key", default=DEMO_API_KEY)
    parser.add_argument("--ipn-secret", default=DEMO_IPN_SECRET)
    args = parser.parse_args()
    simulator = NowPaymentsSimulator(api_key=args.api_key, ipn_secret=args.ipn_secret)
    simulator.start(host=args.host, port=args.port)
    print(f"NOWPayments simulator on {simulator.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


main()
