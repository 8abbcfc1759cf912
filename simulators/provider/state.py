"""The provider's vocabulary and state: constants, orders, refills, faults, and the state a
simulator starts from (and returns to on `reset`)."""

from __future__ import annotations

import itertools
import socket
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from kernel import protocol as p
from kernel.money import money, to_decimal
from simulators.provider.catalogue import DEFAULT_SERVICES, SimService, generate_catalogue

if TYPE_CHECKING:
    from simulators.provider.http import ProviderServer

DEFAULT_KEYS = ("demo-provider-key", "test-key")
DEFAULT_BALANCE = Decimal("1000000.00000")
# A subscription that names no posts is charged for this many (the panel always names them).
SUBSCRIPTION_DEFAULT_POSTS = 100
# Subscriptions answer `status` in their own words.
SUBSCRIPTION_WORDS = {
    p.PENDING: "Pending",
    p.IN_PROGRESS: "Active",
    p.PROCESSING: "Paused",
    p.COMPLETED: "Completed",
    p.PARTIAL: "Expired",
    p.CANCELED: "Canceled",
}
DEFAULT_SPEED = 5.0
API_PATHS = frozenset({"/api/v2", "/api/v2/"})
CONTROL_PATHS = frozenset({"/control", "/control/"})
CURRENCY = "USD"
MAX_LINK_LENGTH = 2048

FAULT_MODES = (
    "latency",
    "hang_after_add",
    "http502_html",
    "http200_html",
    "truncated_json",
    "empty_object",
    "error",
    "http429",
    "close",
    "refuse",
)
AFTER_MODES = frozenset({"hang_after_add", "http502_html", "http200_html", "truncated_json", "empty_object", "close"})
ACTIONS = ("services", "add", "status", "refill", "refill_status", "cancel", "balance")

# The simulator's own texts for situations API_V2.md leaves to the provider.
ERR_REFILL_DISABLED = "Refill is disabled for this service"
ERR_REFILL_NOT_COMPLETED = "Refill is available only for completed orders"
ERR_REFILL_OPEN = "A refill for this order is already in progress"
ERR_CANCEL_DISABLED = "Cancel is disabled for this service"
ERR_CANCEL_FINISHED = "The order is already finished"
ERR_CANCEL_REQUESTED = "Cancel is already requested for this order"
ERR_DRIPFEED_DISABLED = "Drip-feed is disabled for this service"
ERR_TOO_MANY_REQUESTS = "Too many requests"

RAW_KEY_BY_TEXT = {text: key for key, text in p.RAW_ERROR_KEYS.items()}

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
HTML_CHALLENGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
    b'<meta http-equiv="refresh" content="5"></head><body><div id="challenge">'
    b"<h1>Checking your browser before accessing the site.</h1>"
    b"<p>This process is automatic. Your browser will redirect shortly.</p>"
    b"<noscript>Please enable JavaScript and cookies to continue.</noscript></div></body></html>"
)

# Dialect spellings, chosen by order id parity so a client meets several in one run.
DIALECT_STATUS = (
    {
        p.PENDING: "pending",
        p.IN_PROGRESS: "Inprogress",
        p.PROCESSING: "processing",
        p.COMPLETED: "completed",
        p.PARTIAL: "partial",
        p.CANCELED: "Cancelled",
    },
    {
        p.PENDING: "Pending",
        p.IN_PROGRESS: "In Progress",
        p.PROCESSING: "Processing",
        p.COMPLETED: "Completed",
        p.PARTIAL: "Partial",
        p.CANCELED: "cancelled",
    },
)
DIALECT_REFILL_STATUS = (
    {
        p.REFILL_PENDING: "pending",
        p.REFILL_IN_PROGRESS: "inprogress",
        p.REFILL_COMPLETED: "completed",
        p.REFILL_REJECTED: "rejected",
    },
    {
        p.REFILL_PENDING: "Pending",
        p.REFILL_IN_PROGRESS: "In Progress",
        p.REFILL_COMPLETED: "Completed",
        p.REFILL_REJECTED: "Rejected",
    },
)
REFILL_TERMINAL = frozenset({p.REFILL_COMPLETED, p.REFILL_REJECTED})
DEFAULT_TYPE = p.SERVICE_TYPES_BY_NAME["Default"]


class ControlError(ValueError):
    """A control command that cannot be carried out (unknown name, bad argument)."""


@dataclass(slots=True)
class SimOrder:
    id: int
    key: str
    service: int
    link: str
    quantity: int
    charge: Decimal
    start_count: int
    roll: float  # decides the natural outcome
    roll_remains: float
    refill_allowed: bool
    cancel_allowed: bool
    status: str = p.PENDING
    remains: int = 0
    outcome: tuple[str, int] | None = None
    next_at: float | None = None
    held: bool = False
    cancel_requested: bool = False
    refunded: Decimal = Decimal("0")
    last_refill: int | None = None
    runs: int | None = None
    interval: int | None = None
    fields: dict[str, str] | None = None
    subscription: bool = False


@dataclass(slots=True)
class SimRefill:
    id: int
    key: str
    order: int
    roll: float
    status: str = p.REFILL_PENDING
    next_at: float | None = None
    held: bool = False
    outcome: str | None = None


@dataclass
class Fault:
    mode: str
    action: str | None = None
    remaining: int | None = None
    text: str = p.ERR_NOT_ENOUGH_FUNDS
    latency_ms: int = 1000
    retry_after: int = 2
    hang_seconds: float = 60.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "action": self.action,
            "remaining": self.remaining,
            "text": self.text,
            "latency_ms": self.latency_ms,
            "retry_after": self.retry_after,
            "hang_seconds": self.hang_seconds,
        }


class ProviderState:
    """Options and mutable state; the listener, progression, actions and control build on it."""

    def __init__(
        self,
        *,
        services: int = DEFAULT_SERVICES,
        seed: int = 1,
        speed: float | None = DEFAULT_SPEED,
        latency_ms: int = 0,
        dialect: bool = False,
        fault: Fault | None = None,
        keys: Iterable[str] = DEFAULT_KEYS,
        balance: Decimal | str = DEFAULT_BALANCE,
        duplicate_guard: bool = False,
        partial: float = 0.10,
        canceled: float = 0.05,
        refill_rejected: float = 0.10,
        max_orders: int = 1_000_000,
        max_body_bytes: int = 1 << 20,
        verbose: bool = False,
    ) -> None:
        self.seed = seed
        self.service_count = services
        self.verbose = verbose
        self.max_orders = max_orders
        self.max_body_bytes = max_body_bytes
        self._initial = {
            "latency_ms": latency_ms,
            "speed": speed,
            "dialect": dialect,
            "keys": tuple(keys),
            "balance": to_decimal(balance),
            "duplicate_guard": duplicate_guard,
            "outcomes": (partial, canceled, refill_rejected),
        }
        self._lock = threading.RLock()
        self._fault: Fault | None = fault
        self._stopping = threading.Event()
        self._server: ProviderServer | None = None
        self._thread: threading.Thread | None = None
        self._server_lock = threading.Lock()
        self._refusing = False
        self._recover_timer: threading.Timer | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0
        self._reset_state()

    def _reset_state(self) -> None:
        initial = self._initial
        self.latency_ms = cast(int, initial["latency_ms"])
        self.speed: float | None = cast(float | None, initial["speed"])
        self.dialect = bool(initial["dialect"])
        self.duplicate_guard = bool(initial["duplicate_guard"])
        self.partial, self.canceled, self.refill_rejected = cast(tuple[float, float, float], initial["outcomes"])
        self._services: dict[int, SimService] = {s.id: s for s in generate_catalogue(self.service_count, self.seed)}
        self._services_cache: dict[bool, bytes] = {}
        balance = money(cast(Decimal, initial["balance"]))
        self._balances: dict[str, Decimal] = dict.fromkeys(cast(tuple[str, ...], initial["keys"]), balance)
        self._orders: dict[int, SimOrder] = {}
        self._active: dict[int, SimOrder] = {}
        self._finished: deque[int] = deque()
        self._refills: dict[int, SimRefill] = {}
        self._active_refills: dict[int, SimRefill] = {}
        self._open_links: dict[tuple[str, int, str], int] = {}
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = itertools.count()
        self._next_order = 1
        self._next_refill = 1
        self._add_counts: dict[tuple[int, str, int], int] = {}
        self._adds_total = 0
        self._requests: dict[str, int] = {}
