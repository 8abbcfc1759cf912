"""The API v2 actions as data: the endpoint's parameter checks, the documentation page and
the OpenAPI description are all generated from this, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel import protocol


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Action:
    name: str
    title: str
    params: tuple[Param, ...]
    example: Any
    note: str = ""


KEY = Param("key", "Your API key")


def _id_list(what: str) -> str:
    return (
        f"{what} IDs separated by commas (up to {protocol.MAX_IDS} distinct). An id named more than once "
        "(40,040) is answered and acted on once, under the id written without leading zeros."
    )


ORDER_IDS = _id_list("Order")

ORDER_STATUS_EXAMPLE = {
    "charge": "0.27819",
    "start_count": "3572",
    "status": "Partial",
    "remains": "157",
    "currency": "USD",
}

ACTIONS: tuple[Action, ...] = (
    Action(
        "services",
        "Service list",
        (KEY, Param("action", "services")),
        [
            {
                "service": 1,
                "name": "Followers",
                "type": "Default",
                "category": "First Category",
                "rate": "0.90",
                "min": "50",
                "max": "10000",
                "refill": True,
                "cancel": True,
                "dripfeed": False,
                "avg_start": "95",
                "avg_time": "410",
                "completion_rate": "96.8",
                "sample": "124",
            }
        ],
        "Measured over the last 30 days from this panel's own orders: avg_start is the median "
        "minutes from placing to the start of delivery, avg_time the median minutes to start "
        "and deliver 1000 units, completion_rate the percentage of finished orders that ended "
        "Completed, sample how many orders finished in the window (the first three are null "
        "until enough orders were measured). Clients that do not know these fields can ignore them. "
        "Rates are in your account currency, with your discount applied: per 1000 units (or list "
        "lines) for most types, × runs for drip-feed; per package for Package and Custom Comments "
        "Package; per 1000 per post for Subscriptions, whose max × posts is charged when placed and "
        "the undelivered part refunded when it ends (100 posts when none are named).",
    ),
    Action(
        "add",
        "Add order",
        (
            KEY,
            Param("action", "add"),
            Param("service", "Service ID"),
            Param("link", "Link to the page"),
            Param("quantity", "Needed quantity"),
            Param("runs", "Drip-feed: runs to deliver", required=False),
            Param("interval", "Drip-feed: minutes between runs", required=False),
        ),
        {"order": 23501},
        "Other service types take the fields listed under 'Fields by service type'. An optional "
        "Idempotency-Key header makes retries safe: the same key with the same parameters returns "
        "the same order without charging again.",
    ),
    Action(
        "status",
        "Order status",
        (KEY, Param("action", "status"), Param("order", "Order ID")),
        ORDER_STATUS_EXAMPLE,
    ),
    Action(
        "status",
        "Multiple orders status",
        (KEY, Param("action", "status"), Param("orders", ORDER_IDS)),
        {"1": ORDER_STATUS_EXAMPLE, "10": {"error": protocol.ERR_INCORRECT_ORDER}},
    ),
    Action("refill", "Create refill", (KEY, Param("action", "refill"), Param("order", "Order ID")), {"refill": "1"}),
    Action(
        "refill",
        "Create multiple refill",
        (KEY, Param("action", "refill"), Param("orders", ORDER_IDS)),
        [{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": protocol.ERR_INCORRECT_ORDER}}],
    ),
    Action(
        "refill_status",
        "Get refill status",
        (KEY, Param("action", "refill_status"), Param("refill", "Refill ID")),
        {"status": "Completed"},
    ),
    Action(
        "refill_status",
        "Get multiple refill status",
        (
            KEY,
            Param("action", "refill_status"),
            Param("refills", _id_list("Refill")),
        ),
        [{"refill": 1, "status": "Completed"}, {"refill": 3, "status": {"error": protocol.ERR_REFILL_NOT_FOUND}}],
    ),
    Action(
        "cancel",
        "Create cancel",
        (KEY, Param("action", "cancel"), Param("orders", ORDER_IDS)),
        [{"order": 9, "cancel": {"error": protocol.ERR_INCORRECT_ORDER}}, {"order": 2, "cancel": 1}],
        "1 means the request was accepted; the refund follows when the order reaches Canceled.",
    ),
    Action("balance", "User balance", (KEY, Param("action", "balance")), {"balance": "100.84292", "currency": "USD"}),
)

ACTION_NAMES = frozenset(a.name for a in ACTIONS)

FIELD_DESCRIPTIONS = {spec.name: spec.description for spec in protocol.FIELD_SPECS}

ERRORS = (
    (protocol.ERR_INCORRECT_REQUEST, "missing or unknown action"),
    (protocol.ERR_INVALID_KEY, "missing or unknown key"),
    (protocol.ERR_INCORRECT_SERVICE, "unknown or disabled service"),
    (protocol.err_min_quantity(50), "quantity below the service's minimum"),
    (protocol.err_max_quantity(10000), "quantity above the service's maximum"),
    (protocol.ERR_NOT_ENOUGH_FUNDS, "the charge is above your balance; nothing is charged"),
    (protocol.ERR_INCORRECT_LINK, "missing or invalid link"),
    (protocol.ERR_DUPLICATE_LINK, "an active order exists on the same link and service"),
    (protocol.ERR_INCORRECT_ORDER, "unknown order, or not yours"),
    (protocol.ERR_REFILL_NOT_FOUND, "unknown refill, or not yours"),
    (protocol.ERR_TOO_MANY_IDS, f"more than {protocol.MAX_IDS} ids in one request"),
)


def type_fields() -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """Each service type with its fields: (name, description, required)."""
    return [
        (t.name, [(f, FIELD_DESCRIPTIONS.get(f, f), f in t.required) for f in t.fields]) for t in protocol.SERVICE_TYPES
    ]
