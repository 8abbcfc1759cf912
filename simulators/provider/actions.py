"""The API v2 actions as the provider answers them (validation order, charges, dialect)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from kernel import protocol as p
from kernel.money import amount_for
from simulators.provider.catalogue import SimService
from simulators.provider.progression import OrderProgression
from simulators.provider.state import (
    CURRENCY,
    DEFAULT_TYPE,
    DIALECT_REFILL_STATUS,
    DIALECT_STATUS,
    ERR_CANCEL_DISABLED,
    ERR_CANCEL_FINISHED,
    ERR_CANCEL_REQUESTED,
    ERR_DRIPFEED_DISABLED,
    ERR_REFILL_DISABLED,
    ERR_REFILL_NOT_COMPLETED,
    ERR_REFILL_OPEN,
    RAW_KEY_BY_TEXT,
    SUBSCRIPTION_DEFAULT_POSTS,
    SUBSCRIPTION_WORDS,
    Fault,
    SimOrder,
    SimRefill,
)
from simulators.provider.wire import dumps, id_out, parse_int, valid_link


class ApiActions(OrderProgression):
    """The API v2 actions: each takes the key and the parameters and returns the JSON reply."""

    @cached_property
    def _actions(self) -> dict[str, Callable[[str, Mapping[str, str]], Any]]:
        return {
            "services": self._act_services,
            "add": self._act_add,
            "status": self._act_status,
            "refill": self._act_refill,
            "refill_status": self._act_refill_status,
            "cancel": self._act_cancel,
            "balance": self._act_balance,
        }

    def _admit(self, action: str) -> Fault | None:
        """Count an API request; the fault it meets, if any (counting down `count`)."""
        with self._lock:
            counted = action if action in self._actions else "other"
            self._requests[counted] = self._requests.get(counted, 0) + 1
            fault = self._fault
            if fault is None or (fault.action is not None and fault.action != action):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return fault

    def handle_api(self, params: Mapping[str, str]) -> bytes:
        """The JSON body answering one API v2 request."""
        action = params.get("action", "").strip().lower()
        with self._lock:
            handler = self._actions.get(action)
            if handler is None:
                return dumps({"error": p.ERR_INCORRECT_REQUEST})
            key = params.get("key", "")
            if key not in self._balances:
                return dumps({"error": p.ERR_INVALID_KEY})
            self._process_due(time.monotonic())
            result = handler(key, params)
        return result if isinstance(result, bytes) else dumps(result)

    def _err(self, text: str) -> dict[str, str]:
        if self.dialect:
            if text.startswith("Quantity less than minimal"):
                text = "neworder.error.min_quantity"
            elif text.startswith("Quantity more than maximum"):
                text = "neworder.error.max_quantity"
            else:
                text = RAW_KEY_BY_TEXT.get(text, text)
        return {"error": text}

    def _act_services(self, key: str, params: Mapping[str, str]) -> bytes:
        cached = self._services_cache.get(self.dialect)
        if cached is None:
            cached = dumps([self._render_service(s) for s in self._services.values()])
            self._services_cache[self.dialect] = cached
        return cached

    def _render_service(self, s: SimService) -> dict[str, Any]:
        if self.dialect:
            return {
                "service": str(s.id),
                "name": s.name,
                "type": s.type,
                "category": s.category,
                "rate": float(s.rate),
                "min": s.min,
                "max": s.max,
                "refill": int(s.refill),
                "cancel": int(s.cancel),
                "dripfeed": int(s.dripfeed),
                "desc": s.desc,
            }
        return {
            "service": s.id,
            "name": s.name,
            "type": s.type,
            "category": s.category,
            "rate": f"{s.rate:f}",
            "min": str(s.min),
            "max": str(s.max),
            "refill": s.refill,
            "cancel": s.cancel,
            "dripfeed": s.dripfeed,
            "desc": s.desc,
        }

    def _act_balance(self, key: str, params: Mapping[str, str]) -> dict[str, Any]:
        balance = self._balances[key]
        return {"balance": float(balance) if self.dialect else f"{balance:f}", "currency": CURRENCY}

    def _act_add(self, key: str, params: Mapping[str, str]) -> dict[str, Any]:
        sid = parse_int(params.get("service"))
        svc = self._services.get(sid) if sid is not None else None
        if svc is None:
            return self._err(p.ERR_INCORRECT_SERVICE)
        stype = p.SERVICE_TYPES_BY_NAME.get(p.normalise_service_type(svc.type), DEFAULT_TYPE)
        link = ""
        if "link" in stype.fields:
            link = params.get("link", "").strip()
            if not valid_link(link):
                return self._err(p.ERR_INCORRECT_LINK)
        fields: dict[str, str] = {}
        runs = interval = None
        if stype.name == "Subscriptions":
            problem = self._check_subscription(svc, params, fields)
            if problem:
                return self._err(problem)
            # Up to max likes on each of `posts` posts: all of it is charged now, and what
            # is not delivered comes back when the subscription ends.
            posts = parse_int(params.get("posts")) or SUBSCRIPTION_DEFAULT_POSTS
            quantity = int(fields["max"]) * posts
        else:
            if stype.quantity_from:
                items = p.split_list(params.get(stype.quantity_from, ""))
                quantity = len(items)
                fields[stype.quantity_from] = p.join_list(items)
            elif stype.has_quantity:
                quantity = parse_int(params.get("quantity")) or 0
            else:
                quantity = 1
            if stype.has_quantity or stype.quantity_from:
                if quantity < svc.min:
                    return self._err(p.err_min_quantity(svc.min))
                if quantity > svc.max:
                    return self._err(p.err_max_quantity(svc.max))
            problem = self._check_fields(stype, params, fields)
            if problem:
                return self._err(problem)
            if stype.dripfeed_capable and (params.get("runs", "").strip() or params.get("interval", "").strip()):
                if not svc.dripfeed:
                    return self._err(ERR_DRIPFEED_DISABLED)
                runs, interval = parse_int(params.get("runs")), parse_int(params.get("interval"))
                if runs is None or runs < 1:
                    return self._err(p.field_error("runs"))
                if interval is None or interval < 1:
                    return self._err(p.field_error("interval"))
        total = quantity * (runs or 1)
        link_key = fields.get("username", "") if stype.name == "Subscriptions" else link
        if self.duplicate_guard and self._open_links.get((key, svc.id, link_key)):
            return self._err(p.ERR_DUPLICATE_LINK)
        charge = amount_for(rate=svc.rate, units=total, per=p.BILLING_DIVISOR[stype.billing])
        if charge > self._balances[key]:
            return self._err(p.ERR_NOT_ENOUGH_FUNDS)
        order = self._create_order(key, svc, link_key, total, charge, fields, runs, interval)
        order.subscription = stype.name == "Subscriptions"
        return {"order": str(order.id) if self.dialect else order.id}

    def _check_fields(self, stype: p.ServiceType, params: Mapping[str, str], fields: dict[str, str]) -> str | None:
        """The type's own fields, checked as the protocol's field table describes them, with
        its error texts (the panel's parser answers the same)."""
        for name in stype.fields:
            if name in ("link", "quantity", "runs", "interval") or name == stype.quantity_from:
                continue
            spec = p.FIELDS[name]
            value = params.get(name, "").strip()
            if spec.kind == p.FIELD_LIST:
                items = p.split_list(value)
                if name in stype.required and not items:
                    return p.field_error(name)
                value = p.join_list(items)
            elif name in stype.required and not value:
                return p.field_error(name)
            if value and spec.kind == p.FIELD_NUMBER:
                number = parse_int(value)
                low = spec.minimum if spec.minimum is not None else 0
                if number is None or number < low or (spec.maximum is not None and number > spec.maximum):
                    return p.field_error(name)
            if value:
                fields[name] = value
        return None

    def _check_subscription(self, svc: SimService, params: Mapping[str, str], fields: dict[str, str]) -> str | None:
        username = params.get("username", "").strip()
        if not username or any(ch.isspace() for ch in username):
            return p.field_error("username")
        low, high = parse_int(params.get("min")), parse_int(params.get("max"))
        if low is None or low < svc.min:
            return p.err_min_quantity(svc.min)
        if high is None or high > svc.max:
            return p.err_max_quantity(svc.max)
        if low > high:
            return p.field_error("max")
        if parse_int(params.get("delay")) not in p.FIELDS["delay"].choices:
            return p.field_error("delay")
        for name in ("posts", "old_posts"):
            raw = params.get(name, "").strip()
            if raw and (parse_int(raw) is None or int(raw) < 0):
                return p.field_error(name)
        expiry = params.get("expiry", "").strip()
        if expiry:
            try:
                datetime.strptime(expiry, "%d/%m/%Y")
            except ValueError:
                return p.field_error("expiry")
        for name in ("username", "min", "max", "delay", "posts", "old_posts", "expiry"):
            if params.get(name, "").strip():
                fields[name] = params[name].strip()
        return None

    def _create_order(
        self,
        key: str,
        svc: SimService,
        link: str,
        quantity: int,
        charge: Decimal,
        fields: dict[str, str],
        runs: int | None,
        interval: int | None,
    ) -> SimOrder:
        oid = self._next_order
        self._next_order += 1
        rng = random.Random(f"{self.seed}:{oid}")
        order = SimOrder(
            id=oid,
            key=key,
            service=svc.id,
            link=link,
            quantity=quantity,
            charge=charge,
            start_count=int(10 ** rng.uniform(1.5, 5.0)),
            roll=rng.random(),
            roll_remains=rng.random(),
            refill_allowed=svc.refill,
            cancel_allowed=svc.cancel,
            remains=quantity,
            runs=runs,
            interval=interval,
            fields=fields or None,
        )
        self._balances[key] -= charge
        self._orders[oid] = order
        self._activate(order)
        self._schedule(order, time.monotonic())
        count_key = (svc.id, link, quantity)
        if count_key in self._add_counts or len(self._add_counts) < self.max_orders:
            self._add_counts[count_key] = self._add_counts.get(count_key, 0) + 1
        self._adds_total += 1
        if len(self._orders) > self.max_orders:
            self._evict_orders()
        return order

    def _act_status(self, key: str, params: Mapping[str, str]) -> Any:
        if params.get("orders", "").strip():
            ids = p.parse_ids(params["orders"])
            if len(ids) > p.MAX_IDS:
                return self._err(p.ERR_TOO_MANY_IDS)
            return {raw: self._status_of(key, raw) for raw in ids}
        return self._status_of(key, params.get("order", ""))

    def _lookup(self, key: str, raw: str) -> SimOrder | None:
        oid = parse_int(raw)
        order = self._orders.get(oid) if oid is not None else None
        return order if order is not None and order.key == key else None

    def _status_of(self, key: str, raw: str) -> dict[str, Any]:
        o = self._lookup(key, raw)
        if o is None:
            return self._err(p.ERR_INCORRECT_ORDER)
        start = 0 if o.status == p.PENDING else o.start_count
        if o.subscription:
            # What it really took so far: the held charge less what came back at the end.
            return {
                "charge": f"{o.charge - o.refunded:f}",
                "start_count": str(start),
                "status": SUBSCRIPTION_WORDS[o.status],
                "remains": str(o.remains),
                "currency": CURRENCY,
            }
        if self.dialect:
            return {
                "charge": float(o.charge),
                "start_count": start,
                "status": DIALECT_STATUS[o.id % 2][o.status],
                "remains": o.remains,
                "currency": CURRENCY,
            }
        return {
            "charge": f"{o.charge:f}",
            "start_count": str(start),
            "status": o.status,
            "remains": str(o.remains),
            "currency": CURRENCY,
        }

    def _act_refill(self, key: str, params: Mapping[str, str]) -> Any:
        if params.get("orders", "").strip():
            ids = p.parse_ids(params["orders"])
            if len(ids) > p.MAX_IDS:
                return self._err(p.ERR_TOO_MANY_IDS)
            out = []
            for raw in ids:
                outcome = self._refill_one(key, raw)
                if isinstance(outcome, str):
                    value: Any = self._err(outcome)
                else:
                    value = str(outcome.id) if self.dialect else outcome.id
                out.append({"order": self._ident(raw), "refill": value})
            return out
        outcome = self._refill_one(key, params.get("order", ""))
        if isinstance(outcome, str):
            return self._err(outcome)
        return {"refill": outcome.id if self.dialect else str(outcome.id)}

    def _ident(self, raw: str) -> int | str:
        return raw if self.dialect else id_out(raw)

    def _refill_one(self, key: str, raw: str) -> SimRefill | str:
        o = self._lookup(key, raw)
        if o is None:
            return p.ERR_INCORRECT_ORDER
        if not o.refill_allowed:
            return ERR_REFILL_DISABLED
        if o.status != p.COMPLETED:
            return ERR_REFILL_NOT_COMPLETED
        if o.last_refill is not None and o.last_refill in self._active_refills:
            return ERR_REFILL_OPEN
        rid = self._next_refill
        self._next_refill += 1
        refill = SimRefill(id=rid, key=key, order=o.id, roll=random.Random(f"{self.seed}:refill:{rid}").random())
        self._refills[rid] = refill
        self._active_refills[rid] = refill
        o.last_refill = rid
        self._schedule_refill(refill, time.monotonic())
        if len(self._refills) > self.max_orders:
            victim = next(iter(self._refills))
            self._refills.pop(victim)
            self._active_refills.pop(victim, None)
        return refill

    def _act_refill_status(self, key: str, params: Mapping[str, str]) -> Any:
        if params.get("refills", "").strip():
            ids = p.parse_ids(params["refills"])
            if len(ids) > p.MAX_IDS:
                return self._err(p.ERR_TOO_MANY_IDS)
            return [{"refill": self._ident(raw), "status": self._refill_status_of(key, raw)} for raw in ids]
        status = self._refill_status_of(key, params.get("refill", ""))
        return status if isinstance(status, dict) else {"status": status}

    def _refill_status_of(self, key: str, raw: str) -> Any:
        rid = parse_int(raw)
        refill = self._refills.get(rid) if rid is not None else None
        if refill is None or refill.key != key:
            return self._err(p.ERR_REFILL_NOT_FOUND)
        return DIALECT_REFILL_STATUS[refill.id % 2][refill.status] if self.dialect else refill.status

    def _act_cancel(self, key: str, params: Mapping[str, str]) -> Any:
        raw_ids = params.get("orders", "").strip() or params.get("order", "").strip()
        ids = p.parse_ids(raw_ids)
        if not ids:
            return self._err(p.ERR_INCORRECT_ORDER)
        if len(ids) > p.MAX_IDS:
            return self._err(p.ERR_TOO_MANY_IDS)
        out = []
        for raw in ids:
            problem = self._cancel_one(key, raw)
            out.append({"order": self._ident(raw), "cancel": self._err(problem) if problem else 1})
        return out

    def _cancel_one(self, key: str, raw: str) -> str | None:
        o = self._lookup(key, raw)
        if o is None:
            return p.ERR_INCORRECT_ORDER
        if not o.cancel_allowed:
            return ERR_CANCEL_DISABLED
        if o.status in p.TERMINAL_STATUSES:
            return ERR_CANCEL_FINISHED
        if o.cancel_requested:
            return ERR_CANCEL_REQUESTED
        o.cancel_requested = True
        if not o.held:
            self._schedule(o, time.monotonic())
        return None
