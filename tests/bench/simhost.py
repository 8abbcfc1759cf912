"""The provider simulator as its own process, as a real provider is, plus one bench command.

    python -m tests.bench.simhost --port 8911 --latency-ms 100 --speed 0

Everything of `python manage.py simulator` (same options; `--speed 0` means orders move only
when told to), and one more control command, `bulk_add`, that creates many orders at once
without HTTP, so that a status sync over 100,000 orders can be benchmarked without first
buying them one request at a time.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time

from kernel.money import charge_for
from simulators import provider as sim_module
from simulators.provider import ControlError, Simulator


class BenchSimulator(Simulator):
    CONTROL_COMMANDS = (*Simulator.CONTROL_COMMANDS, "bulk_add")

    def bulk_add(self, service: int, count: int, quantity: int, key: str = "demo-provider-key") -> list[int]:
        """Create `count` orders of `quantity` on `service`, as `add` would; [first id, last id]."""
        with self._lock:
            svc = self._services.get(int(service))
            if svc is None or key not in self._balances:
                raise ControlError("unknown service or key")
            first = last = 0
            for n in range(int(count)):
                charge = charge_for(rate_per_1000=svc.rate, quantity=int(quantity))
                order = self._create_order(
                    key, svc, f"https://bench.example/bulk/{n}", int(quantity), charge, {}, None, None
                )
                last = order.id
                first = first or order.id
            return [first, last]


def main() -> None:
    parser = argparse.ArgumentParser(description="The provider simulator for benchmarks.")
    sim_module.add_arguments(parser)
    options = vars(parser.parse_args())
    sim = BenchSimulator(
        services=options["services"],
        seed=options["seed"],
        speed=options["speed"] or None,  # 0: orders move only when told to
        latency_ms=options["latency_ms"],
        max_orders=options["max_orders"],
        keys=options["key"] or sim_module.DEFAULT_KEYS,
    ).start(host=options["host"], port=options["port"])
    print(f"bench simulator on {sim.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
