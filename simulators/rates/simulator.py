"""An exchange-rates source on loopback, in the shapes real sources publish:

- `GET /api/latest.json?app_id=KEY[&base=USD]`: Open Exchange Rates' latest.json
  (`disclaimer`, `license`, `timestamp`, `base`, `rates`); a wrong `app_id` answers 401
  `{"error": true, "status": 401, "message": "invalid_app_id"}` as OXR does;
- `GET /latest?base=EUR` (or `from=`): Frankfurter's `{"amount", "base", "date", "rates"}`;
- `GET /eurofxref-daily.xml`: the ECB's daily reference rates (EUR based, XML);
- `POST /control`: `{"action": "faults", "mode": "ok|slow|error|garbage|absurd|nonsense",
  "delay": 30}`, `{"action": "rates", "rates": {"EUR": "0.9"}}` (units per USD),
  `{"action": "state"}`.

Fault modes: `slow` sleeps `delay` seconds before answering, `error` answers 500, `garbage`
an HTML error page with status 200, `absurd` every rate × 1000, `nonsense` zero, negative
and non-numeric rates. Framework-free (the standard library only).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulators.web import SimulatorHandler

DEMO_KEY = "demo-rates-key"
# Units per one US dollar: demo values of the currencies panels' customers use.
DEMO_RATES = {
    "EUR": "0.9187",
    "GBP": "0.7862",
    "INR": "83.412",
    "TRY": "34.215",
    "BRL": "5.0512",
    "RUB": "92.75",
    "IDR": "15652.5",
    "JPY": "151.32",
    "NGN": "1478.9",
    "PKR": "278.4",
}
FAULT_MODES = frozenset({"ok", "slow", "error", "garbage", "absurd", "nonsense"})
GARBAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class RatesSimulator:
    """One rates source. Thread-safe; `start()` serves it on a free loopback port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str = DEMO_KEY) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.usd_rates = {code: Decimal(value) for code, value in DEMO_RATES.items()}
        self.mode = "ok"
        self.delay = 30.0
        self.requests: list[str] = []
        self.server = _Server((host, port), _handler(self))

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RatesSimulator:
        threading.Thread(target=self.server.serve_forever, name="rates-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- rates -------------------------------------------------------------------------------

    def rates(self, base: str) -> dict[str, Decimal]:
        """Units of each currency per one `base`, with the fault mode applied."""
        with self.lock:
            usd = dict(self.usd_rates, USD=Decimal(1))
            mode = self.mode
        pivot = usd.get(base.upper())
        if pivot is None:
            return {}
        rates = {
            code: (rate / pivot).quantize(Decimal("0.000001")) for code, rate in usd.items() if code != base.upper()
        }
        if mode == "absurd":
            rates = {code: rate * 1000 for code, rate in rates.items()}
        return rates

    def _numbers(self, rates: dict[str, Decimal]) -> dict[str, Any]:
        if self.mode != "nonsense":
            return {code: float(rate) for code, rate in rates.items()}
        shown: dict[str, Any] = {code: float(rate) for code, rate in rates.items()}
        # Zero, negative, text and null in turn; every fifth currency keeps a sound rate.
        for index, code in enumerate(sorted(shown)):
            if index % 5 < 4:
                shown[code] = [0, -1.5, "n/a", None][index % 5]
        return shown

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        with self.lock:
            self.requests.append(path)
            mode, delay = self.mode, self.delay
        if mode == "slow":
            time.sleep(delay)
        if mode == "error":
            return 500, b'{"error": true, "status": 500, "message": "internal_error"}', "application/json"
        if mode == "garbage":
            return 200, GARBAGE, "text/html"
        if path == "/api/latest.json":
            if self.api_key and (query.get("app_id") or [""])[0] != self.api_key:
                body = {"error": True, "status": 401, "message": "invalid_app_id", "description": "Invalid App ID"}
                return 401, json.dumps(body).encode(), "application/json"
            base = (query.get("base") or ["USD"])[0]
            document = {
                "disclaimer": "Simulated rates, for testing only.",
                "license": "https://example.invalid/license",
                "timestamp": int(time.time()),
                "base": base.upper(),
                "rates": self._numbers(self.rates(base)),
            }
            return 200, json.dumps(document).encode(), "application/json; charset=utf-8"
        if path == "/latest":
            base = (query.get("base") or query.get("from") or ["EUR"])[0]
            document = {
                "amount": 1.0,
                "base": base.upper(),
                "date": datetime.now(UTC).date().isoformat(),
                "rates": self._numbers(self.rates(base)),
            }
            return 200, json.dumps(document).encode(), "application/json"
        if path == "/eurofxref-daily.xml":
            return 200, self._ecb().encode(), "text/xml"
        return 404, b'{"message": "not found"}', "application/json"

    def _ecb(self) -> str:
        cubes = "".join(
            f"<Cube currency='{code}' rate='{value}'/>" for code, value in self._numbers(self.rates("EUR")).items()
        )
        return (
            "<?xml version='1.0' encoding='UTF-8'?>"
            "<gesmes:Envelope xmlns:gesmes='http://www.gesmes.org/xml/2002-08-01' "
            "xmlns='http://www.ecb.int/vocabulary/2002-08-01/eurofxref'>"
            "<gesmes:subject>Reference rates</gesmes:subject>"
            "<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>"
            f"<Cube><Cube time='{datetime.now(UTC).date().isoformat()}'>{cubes}</Cube></Cube>"
            "</gesmes:Envelope>"
        )

    def control(self, command: dict[str, Any]) -> dict[str, Any]:
        action = command.get("action")
        with self.lock:
            if action == "faults":
                mode = str(command.get("mode", "ok"))
                if mode not in FAULT_MODES:
                    return {"error": f"unknown mode {mode!r}"}
                self.mode = mode
                self.delay = float(command.get("delay", self.delay))
                return {"ok": True}
            if action == "rates":
                for code, value in dict(command.get("rates") or {}).items():
                    self.usd_rates[str(code).upper()] = Decimal(str(value))
                return {"ok": True}
            if action == "state":
                rates = {code: str(rate) for code, rate in self.usd_rates.items()}
                return {"mode": self.mode, "rates": rates, "requests": len(self.requests)}
        return {"error": f"unknown action {action!r}"}


def _handler(sim: RatesSimulator) -> type[SimulatorHandler]:
    class Handler(SimulatorHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body, content_type = sim.answer(parts.path, parse_qs(parts.query))
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(status, body, content_type=content_type)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/control":
                self._send(404, {"message": "not found"})
                return
            try:
                command = json.loads(self._body() or b"{}")
            except ValueError:
                self._send(400, {"error": "not JSON"})
                return
            self._send(200, sim.control(command if isinstance(command, dict) else {}))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local exchange-rates source for the panel.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8912)
    parser.add_argument("--api-key", default=DEMO_KEY)
    args = parser.parse_args()
    sim = RatesSimulator(host=args.host, port=args.port, api_key=args.api_key)
    print(f"Rates simulator on {sim.base_url}: /api/latest.json, /latest, /eurofxref-daily.xml", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.server.serve_forever()
