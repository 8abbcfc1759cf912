"""`python -m simulators.provider` and `python manage.py simulator`: options and the foreground run."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

from simulators.provider.catalogue import DEFAULT_SERVICES
from simulators.provider.simulator import Simulator
from simulators.provider.state import ACTIONS, DEFAULT_KEYS, DEFAULT_SPEED, FAULT_MODES, Fault


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port (default 8900; 0 picks a free one)")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="seconds per order status step")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before every answer")
    parser.add_argument("--fault", choices=FAULT_MODES, default=None, help="start with this fault mode")
    parser.add_argument("--fault-action", choices=ACTIONS, default=None, help="only this action is faulted")
    parser.add_argument("--fault-count", type=int, default=None, help="only the next N matching requests")
    parser.add_argument("--fault-text", default=None, help="the error text of --fault error")
    parser.add_argument("--dialect", action="store_true", help="answer like a sloppier provider")
    parser.add_argument("--services", type=int, default=DEFAULT_SERVICES, help="catalogue size")
    parser.add_argument("--seed", type=int, default=1, help="seed of the catalogue and outcomes")
    parser.add_argument("--key", action="append", default=None, help="API key to accept (repeatable)")
    parser.add_argument("--duplicate-guard", action="store_true", help="reject a second active order on a link")
    parser.add_argument("--max-orders", type=int, default=1_000_000, help="orders kept in memory")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")


def from_options(options: Mapping[str, Any]) -> Simulator:
    fault = None
    if options.get("fault"):
        fault = Fault(mode=options["fault"], action=options.get("fault_action"), remaining=options.get("fault_count"))
        if fault.mode == "hang_after_add" and fault.action is None:
            fault.action = "add"
        if options.get("fault_text"):
            fault.text = options["fault_text"]
    return Simulator(
        services=options.get("services", DEFAULT_SERVICES),
        seed=options.get("seed", 1),
        speed=options.get("speed", DEFAULT_SPEED),
        latency_ms=options.get("latency_ms", 0),
        dialect=bool(options.get("dialect")),
        fault=fault,
        keys=options.get("key") or DEFAULT_KEYS,
        duplicate_guard=bool(options.get("duplicate_guard")),
        max_orders=options.get("max_orders", 1_000_000),
        verbose=bool(options.get("verbose")),
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(options: Mapping[str, Any], write: Callable[[str], object] = print) -> None:
    """Run in the foreground until Ctrl-C (or SIGTERM)."""
    sim = from_options(options).start(host=options.get("host", "127.0.0.1"), port=options.get("port", 8900))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # honcho and systemd stop with SIGTERM: stop cleanly
    keys = ", ".join(sim.summary()["balances"])
    try:
        # Inside the try: a Ctrl-C sent as soon as this line is read must still stop cleanly.
        write(f"Provider simulator: {sim.url} (control: {sim.control_url}); keys: {keys}; Ctrl-C stops it.")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An upstream SMM provider speaking API v2.")
    add_arguments(parser)
    serve(vars(parser.parse_args(argv)), write=lambda line: print(line, flush=True))
