"""Control commands: the Python API of a simulator, which POST /control runs by name."""

from __future__ import annotations

import builtins
import itertools
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kernel import protocol as p
from kernel.money import MoneyFormatError, money, to_decimal
from simulators.provider.actions import ApiActions
from simulators.provider.catalogue import SimService
from simulators.provider.state import (
    ACTIONS,
    DEFAULT_BALANCE,
    FAULT_MODES,
    REFILL_TERMINAL,
    ControlError,
    Fault,
    SimOrder,
)
from simulators.provider.wire import command_list, jsonable


class ControlCommands(ApiActions):
    """The control commands, each a method; POST /control calls them by name."""

    CONTROL_COMMANDS = (
        "set_fault",
        "clear_fault",
        "set_latency",
        "set_dialect",
        "set_speed",
        "set_duplicate_guard",
        "set_outcomes",
        "advance",
        "force_status",
        "set_outcome",
        "force_refill_status",
        "set_service",
        "add_service",
        "remove_service",
        "set_balance",
        "add_key",
        "reset_counters",
        "refuse",
        "recover",
        "reset",
        "summary",
        "order",
    )

    def run_command(self, command: Mapping[str, Any]) -> Any:
        args = dict(command)
        name = args.pop("cmd", None)
        if name not in self.CONTROL_COMMANDS:
            raise ControlError(f"unknown command {name!r}; known: {', '.join(self.CONTROL_COMMANDS)}")
        try:
            return jsonable(getattr(self, name)(**args))
        except ControlError:
            raise
        except (TypeError, ValueError, KeyError, MoneyFormatError) as exc:
            raise ControlError(f"{name}: {exc}") from exc

    def control(self, commands: object) -> list[Any]:
        """Run control commands as the HTTP endpoint would (a dict, a list, or {"commands": [...]})."""
        return [self.run_command(c) for c in command_list(commands)]

    def set_fault(
        self,
        mode: str,
        *,
        action: str | None = None,
        count: int | None = None,
        text: str | None = None,
        latency_ms: int | None = None,
        retry_after: int | None = None,
        hang_seconds: float | None = None,
        seconds: float | None = None,
    ) -> None:
        if mode not in FAULT_MODES:
            raise ControlError(f"unknown fault mode {mode!r}; known: {', '.join(FAULT_MODES)}")
        if action is not None and action not in ACTIONS:
            raise ControlError(f"unknown action {action!r}")
        if count is not None and int(count) < 1:
            raise ControlError("count must be at least 1")
        if mode == "refuse":
            self.refuse(seconds=seconds)
            return
        fault = Fault(mode=mode, action=action or ("add" if mode == "hang_after_add" else None))
        fault.remaining = None if count is None else int(count)
        if text is not None:
            fault.text = str(text)
        if latency_ms is not None:
            fault.latency_ms = int(latency_ms)
        if retry_after is not None:
            fault.retry_after = int(retry_after)
        if hang_seconds is not None:
            fault.hang_seconds = float(hang_seconds)
        with self._lock:
            self._fault = fault

    def clear_fault(self) -> None:
        with self._lock:
            self._fault = None
        self.recover()

    def fault(self) -> dict[str, Any] | None:
        with self._lock:
            return self._fault.as_dict() if self._fault is not None else None

    def set_latency(self, ms: int) -> None:
        if int(ms) < 0:
            raise ControlError("ms must be >= 0")
        self.latency_ms = int(ms)

    def set_dialect(self, on: bool = True) -> None:
        with self._lock:
            self.dialect = bool(on)

    def set_speed(self, seconds: float | None) -> None:
        """Seconds per step; None stops automatic progress (advance still works)."""
        if seconds is not None and float(seconds) < 0:
            raise ControlError("seconds must be >= 0")
        with self._lock:
            now = time.monotonic()
            self._process_due(now)
            self.speed = None if seconds is None else float(seconds)
            self._heap = []
            for o in self._active.values():
                self._schedule(o, now)
            for r in self._active_refills.values():
                self._schedule_refill(r, now)

    def set_duplicate_guard(self, on: bool = True) -> None:
        with self._lock:
            self.duplicate_guard = bool(on)

    def set_outcomes(
        self, partial: float | None = None, canceled: float | None = None, refill_rejected: float | None = None
    ) -> None:
        with self._lock:
            new_partial = self.partial if partial is None else float(partial)
            new_canceled = self.canceled if canceled is None else float(canceled)
            new_rejected = self.refill_rejected if refill_rejected is None else float(refill_rejected)
            if not (
                new_partial >= 0 and new_canceled >= 0 and new_partial + new_canceled <= 1 and 0 <= new_rejected <= 1
            ):
                raise ControlError("fractions must be between 0 and 1 (partial + canceled at most 1)")
            self.partial, self.canceled, self.refill_rejected = new_partial, new_canceled, new_rejected

    def advance(self, steps: int | None = None, orders: Iterable[int] | None = None) -> dict[str, int]:
        """Move orders (and, without `orders`, refills) `steps` steps, or to their final state."""
        limit = 2 if steps is None else int(steps)
        with self._lock:
            now = time.monotonic()
            self._process_due(now)
            if orders is None:
                targets = list(self._active.values())
                refills = list(self._active_refills.values())
            else:
                targets = [self._orders[int(i)] for i in orders if int(i) in self._orders]
                refills = []
            for o in targets:
                for _ in range(limit):
                    if o.status in p.TERMINAL_STATUSES:
                        break
                    self._step_order(o, now)
            for r in refills:
                for _ in range(limit):
                    if r.status in REFILL_TERMINAL:
                        break
                    self._step_refill(r, now)
            return {"orders": len(targets), "refills": len(refills)}

    def advance_all(self) -> dict[str, int]:
        return self.advance()

    def _get_order(self, order: int) -> SimOrder:
        found = self._orders.get(int(order))
        if found is None:
            raise ControlError(f"no order {order}")
        return found

    def force_status(self, order: int, status: str, remains: int | None = None, start_count: int | None = None) -> None:
        canonical = p.normalise_status(status)
        if canonical is None:
            raise ControlError(f"unknown status {status!r}")
        with self._lock:
            self._process_due(time.monotonic())
            o = self._get_order(order)
            if remains is None:
                remains = {p.COMPLETED: 0, p.PARTIAL: o.quantity // 2}.get(canonical, o.quantity)
            if not 0 <= int(remains) <= o.quantity:
                raise ControlError(f"remains must be between 0 and {o.quantity}")
            if start_count is not None:
                o.start_count = int(start_count)
            if canonical in p.TERMINAL_STATUSES:
                self._finish(o, canonical, int(remains))
                return
            self._activate(o)
            o.status, o.remains, o.held, o.next_at = canonical, int(remains), True, None
            self._settle(o, Decimal("0"))

    def set_outcome(self, order: int, status: str, remains: int | None = None) -> None:
        canonical = p.normalise_status(status)
        if canonical not in p.TERMINAL_STATUSES:
            raise ControlError(f"an outcome is a final status, not {status!r}")
        with self._lock:
            o = self._get_order(order)
            value = (
                int(remains)
                if remains is not None
                else {p.COMPLETED: 0, p.PARTIAL: o.quantity // 2}.get(canonical, o.quantity)
            )
            o.outcome = (canonical, value)

    def force_refill_status(self, refill: int, status: str) -> None:
        canonical = p.normalise_refill_status(status)
        if canonical is None:
            raise ControlError(f"unknown refill status {status!r}")
        with self._lock:
            r = self._refills.get(int(refill))
            if r is None:
                raise ControlError(f"no refill {refill}")
            if canonical in REFILL_TERMINAL:
                self._finish_refill(r, canonical)
            else:
                r.status, r.held, r.next_at = canonical, True, None
                self._active_refills[r.id] = r

    def set_service(self, service: int, **changes: Any) -> dict[str, Any]:
        allowed = {"name", "type", "category", "rate", "min", "max", "refill", "cancel", "dripfeed", "desc"}
        unknown = set(changes) - allowed
        if unknown:
            raise ControlError(f"unknown service fields {sorted(unknown)}")
        with self._lock:
            svc = self._services.get(int(service))
            if svc is None:
                raise ControlError(f"no service {service}")
            for name, value in changes.items():
                setattr(svc, name, self._service_value(name, value))
            self._services_cache.clear()
            return self._render_plain(svc)

    @staticmethod
    def _service_value(name: str, value: Any) -> Any:
        if name == "rate":
            return to_decimal(value)
        if name in ("min", "max"):
            return int(value)
        if name in ("refill", "cancel", "dripfeed"):
            return bool(value) if not isinstance(value, str) else value.strip().lower() in ("1", "true", "yes")
        return str(value)

    def _render_plain(self, svc: SimService) -> dict[str, Any]:
        dialect, self.dialect = self.dialect, False
        try:
            return self._render_service(svc)
        finally:
            self.dialect = dialect

    def add_service(
        self,
        name: str,
        type: str = "Default",
        category: str = "Other",
        rate: Decimal | str = "1.00",
        min: int = 10,
        max: int = 10000,
        refill: bool = False,
        cancel: bool = False,
        dripfeed: bool = False,
        desc: str = "",
        service: int | None = None,
    ) -> int:
        with self._lock:
            sid = int(service) if service is not None else (builtins.max(self._services, default=0) + 1)
            if sid in self._services:
                raise ControlError(f"service {sid} exists")
            values = {"rate": rate, "min": min, "max": max, "refill": refill, "cancel": cancel, "dripfeed": dripfeed}
            conv = {k: self._service_value(k, v) for k, v in values.items()}
            self._services[sid] = SimService(
                id=sid, name=str(name), type=str(type), category=str(category), desc=str(desc), **conv
            )
            self._services_cache.clear()
            return sid

    def remove_service(self, service: int) -> None:
        with self._lock:
            if self._services.pop(int(service), None) is None:
                raise ControlError(f"no service {service}")
            self._services_cache.clear()

    def services(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._render_plain(s) for s in self._services.values()]

    def set_balance(self, key: str, balance: Decimal | str | float) -> None:
        with self._lock:
            if key not in self._balances:
                raise ControlError(f"no key {key!r}")
            self._balances[key] = money(to_decimal(balance))

    def add_key(self, key: str, balance: Decimal | str | float = DEFAULT_BALANCE) -> None:
        if not isinstance(key, str) or not key:
            raise ControlError("key must be a non-empty string")
        with self._lock:
            self._balances[key] = money(to_decimal(balance))

    def balance(self, key: str) -> Decimal:
        with self._lock:
            self._process_due(time.monotonic())
            return self._balances[key]

    def reset_counters(self) -> None:
        with self._lock:
            self._add_counts.clear()
            self._adds_total = 0
            self._requests.clear()

    def reset(self) -> None:
        with self._lock:
            self._reset_state()
            self._fault = None

    def add_counts(self) -> dict[tuple[int, str, int], int]:
        """Orders created per (service, link, quantity) since the last reset_counters."""
        with self._lock:
            return dict(self._add_counts)

    def add_count(self, service: int, link: str, quantity: int) -> int:
        with self._lock:
            return self._add_counts.get((int(service), link, int(quantity)), 0)

    def adds_total(self) -> int:
        with self._lock:
            return self._adds_total

    def open_connections(self) -> int:
        """Client connections a server thread is handling now (keep-alive ones included)."""
        with self._conns_lock:
            return len(self._conns)

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._requests)

    def order(self, order: int) -> dict[str, Any]:
        with self._lock:
            self._process_due(time.monotonic())
            o = self._get_order(order)
            return jsonable(
                {
                    "order": o.id,
                    "key": o.key,
                    "service": o.service,
                    "link": o.link,
                    "quantity": o.quantity,
                    "charge": o.charge,
                    "status": o.status,
                    "remains": o.remains,
                    "start_count": o.start_count,
                    "refunded": o.refunded,
                    "cancel_requested": o.cancel_requested,
                    "held": o.held,
                    "runs": o.runs,
                    "interval": o.interval,
                    "fields": dict(o.fields or {}),
                }
            )

    def summary(self, max_counts: int = 10000) -> dict[str, Any]:
        with self._lock:
            self._process_due(time.monotonic())
            counts = [
                {"service": s, "link": link, "quantity": q, "count": n}
                for (s, link, q), n in itertools.islice(self._add_counts.items(), max_counts)
            ]
            return {
                "url": self.url,
                "mode": {
                    "fault": self._fault.as_dict() if self._fault is not None else None,
                    "latency_ms": self.latency_ms,
                    "dialect": self.dialect,
                    "speed": self.speed,
                    "refusing": self._refusing,
                    "duplicate_guard": self.duplicate_guard,
                    "outcomes": {
                        "partial": self.partial,
                        "canceled": self.canceled,
                        "refill_rejected": self.refill_rejected,
                    },
                },
                "services": len(self._services),
                "orders": len(self._orders),
                "active_orders": len(self._active),
                "refills": len(self._refills),
                "active_refills": len(self._active_refills),
                "balances": {k: f"{v:f}" for k, v in self._balances.items()},
                "adds_total": self._adds_total,
                "add_counts": counts,
                "add_counts_truncated": len(self._add_counts) > max_counts,
                "requests": dict(self._requests),
                "connections": self.open_connections(),
            }
