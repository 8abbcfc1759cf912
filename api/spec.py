"""The API v2 actions as data: the endpoint's parameter checks, the documentation page and
the OpenAPI description are all generated from this, so they cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel import protocol
from kernel.protocol import gettext_noop


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


KEY = Param("key", gettext_noop("Your API key"))


# The page translates these texts (`%(max)s` is protocol.MAX_IDS); the OpenAPI file keeps English.
ORDER_IDS = gettext_noop(
    "Order IDs separated by commas (up to %(max)s distinct). An id named more than once "
    "(40,040) is answered and acted on once, under the id written without leading zeros."
)
REFILL_IDS = gettext_noop(
    "Refill IDs separated by commas (up to %(max)s distinct). An id named more than once "
    "(40,040) is answered and acted on once, under the id written without leading zeros."
)

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
        gettext_noop("Service list"),
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
        gettext_noop(
            "Measured over the last 30 days from this panel's own orders: avg_start is the median "
            "minutes from placing to the start of delivery, avg_time the median minutes to start "
            "and deliver 1000 units, completion_rate the percentage of finished orders that ended "
            "Completed, sample how many orders finished in the window (the first three are null "
            "until enough orders were measured). Clients that do not know these fields can ignore them. "
            "Rates are in your account currency, with your discount applied: per 1000 units (or list "
            "lines) for most types, × runs for drip-feed; per package for Package and Custom Comments "
            "Package; per 1000 per post for Subscriptions, whose max × posts is charged when placed and "
            "the undelivered part refunded when it ends (100 posts when none are named)."
        ),
    ),
    Action(
        "add",
        gettext_noop("Add order"),
        (
            KEY,
            Param("action", "add"),
            Param("service", gettext_noop("Service ID")),
            Param("link", gettext_noop("Link to the page")),
            Param("quantity", gettext_noop("Needed quantity")),
            Param("runs", gettext_noop("Drip-feed: runs to deliver"), required=False),
            Param("interval", gettext_noop("Drip-feed: minutes between runs"), required=False),
        ),
        {"order": 23501},
        gettext_noop(
            "Other service types take the fields listed under 'Fields by service type'. An optional "
            "Idempotency-Key header makes retries safe: the same key with the same parameters returns "
            "the same order without charging again."
        ),
    ),
    Action(
        "status",
        gettext_noop("Order status"),
        (KEY, Param("action", "status"), Param("order", gettext_noop("Order ID"))),
        ORDER_STATUS_EXAMPLE,
    ),
    Action(
        "status",
        gettext_noop("Multiple orders status"),
        (KEY, Param("action", "status"), Param("orders", ORDER_IDS)),
        {"1": ORDER_STATUS_EXAMPLE, "10": {"error": protocol.ERR_INCORRECT_ORDER}},
    ),
    Action(
        "refill",
        gettext_noop("Create refill"),
        (KEY, Param("action", "refill"), Param("order", gettext_noop("Order ID"))),
        {"refill": "1"},
    ),
    Action(
        "refill",
        gettext_noop("Create multiple refill"),
        (KEY, Param("action", "refill"), Param("orders", ORDER_IDS)),
        [{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": protocol.ERR_INCORRECT_ORDER}}],
    ),
    Action(
        "refill_status",
        gettext_noop("Get refill status"),
        (KEY, Param("action", "refill_status"), Param("refill", gettext_noop("Refill ID"))),
        {"status": "Completed"},
    ),
    Action(
        "refill_status",
        gettext_noop("Get multiple refill status"),
        (
            KEY,
            Param("action", "refill_status"),
            Param("refills", REFILL_IDS),
        ),
        [{"refill": 1, "status": "Completed"}, {"refill": 3, "status": {"error": protocol.ERR_REFILL_NOT_FOUND}}],
    ),
    Action(
        "cancel",
        gettext_noop("Create cancel"),
        (KEY, Param("action", "cancel"), Param("orders", ORDER_IDS)),
        [{"order": 9, "cancel": {"error": protocol.ERR_INCORRECT_ORDER}}, {"order": 2, "cancel": 1}],
        gettext_noop("1 means the request was accepted; the refund follows when the order reaches Canceled."),
    ),
    Action(
        "balance",
        gettext_noop("User balance"),
        (KEY, Param("action", "balance")),
        {"balance": "100.84292", "currency": "USD"},
    ),
)

ACTION_NAMES = frozenset(a.name for a in ACTIONS)

FIELD_DESCRIPTIONS = {spec.name: spec.description for spec in protocol.FIELD_SPECS}

ERRORS = (
    (protocol.ERR_INCORRECT_REQUEST, gettext_noop("missing or unknown action")),
    (protocol.ERR_INVALID_KEY, gettext_noop("missing or unknown key")),
    (protocol.ERR_INCORRECT_SERVICE, gettext_noop("unknown or disabled service")),
    (protocol.err_min_quantity(50), gettext_noop("quantity below the service's minimum")),
    (protocol.err_max_quantity(10000), gettext_noop("quantity above the service's maximum")),
    (protocol.ERR_NOT_ENOUGH_FUNDS, gettext_noop("the charge is above your balance; nothing is charged")),
    (protocol.ERR_INCORRECT_LINK, gettext_noop("missing or invalid link")),
    (protocol.ERR_DUPLICATE_LINK, gettext_noop("an active order exists on the same link and service")),
    (protocol.ERR_INCORRECT_ORDER, gettext_noop("unknown order, or not yours")),
    (protocol.ERR_REFILL_NOT_FOUND, gettext_noop("unknown refill, or not yours")),
    (protocol.ERR_TOO_MANY_IDS, gettext_noop("more than %(max)s ids in one request")),
)


def type_fields() -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """Each service type with its fields: (name, description, required)."""
    return [
        (t.name, [(f, FIELD_DESCRIPTIONS.get(f, f), f in t.required) for f in t.fields]) for t in protocol.SERVICE_TYPES
    ]
