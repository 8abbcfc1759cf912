"""Provider simulator: a standalone HTTP server that behaves as an upstream SMM provider.

It speaks API v2 (shared/API_V2.md) exactly as the panel's provider client expects it, and
misbehaves on request the way real providers do. `make run` uses it as the demo provider,
tests start one per test (tests/providers/conftest.py), benchmarks point load at it.
Framework-free on purpose: stdlib plus `kernel.protocol` and `kernel.money`, no ORM.

Run it: `python manage.py simulator --port 8900` (or `python -m providers.simulator`).
In-process: `sim = Simulator(seed=1).start(port=0)`; `sim.url`, `sim.control_url`, `sim.stop()`.

API (POST /api/v2 and /api/v2/, no redirect)
    Form body, GET query or JSON body (body wins over the query). Every application outcome
    is HTTP 200, Content-Type application/json, compact JSON. `action` is checked before
    `key`: a missing or unknown action answers "Incorrect request", then an unknown key
    "Invalid API key". Keys "demo-provider-key" and "test-key" exist by default, each with
    1000000.00000 USD. All actions of API_V2.md, single and bulk (`orders=` / `refills=`,
    at most 100 ids).

    add: validates in this order: service exists, link (blank, whitespace or > 2048
    characters is "Incorrect link"; Subscriptions have no link), quantity against the
    service's min/max (Custom Comments, Mentions Custom List and Comment Replies count their
    list; Package and Custom Comments Package have quantity 1, and
    Subscriptions check their `min`/`max` fields instead), the type's other required fields
    ("Incorrect <field>"), drip-feed (`runs`/`interval` only where the service has
    dripfeed; min/max apply per run, total = runs x quantity), the duplicate guard (off by
    default), then funds. The charge follows API_V2.md, "What an order costs" (half-up, 5
    places): rate x total / 1000; Package and Custom Comments Package: rate, one package;
    Subscriptions: rate x max x posts / 1000 (posts default 100), their quantity being
    max x posts. It comes off the key's balance. The add counter is keyed by (service, link,
    total quantity); for Subscriptions the link part is the username.

Orders move on their own: Pending -> In progress -> final, one step every `speed` seconds
(speed None: only when told to through `advance`). The final state is drawn once per order
from the seed: a `partial` fraction ends Partial (refund of the undelivered part, rounded
down), a `canceled` fraction Canceled (full refund), the rest Completed. An accepted cancel
ends Canceled with a full refund at the next step. Refills go Pending -> In progress ->
Completed, a `refill_rejected` fraction Rejected. Only Completed orders of services that
had refill when ordered can be refilled, one open refill per order; only unfinished
orders of services that had cancel can be canceled. `status` shows start_count "0" while
Pending and always the original charge. Subscriptions answer in their own words (Active,
Paused, Completed, Expired for one that ended with posts undelivered, Canceled) and with
the charge they really took (the refund of what was not delivered deducted).

Faults (one at a time; optionally for one action, optionally for the next N matching
requests, after which the fault clears itself):
    latency          sleep `latency_ms` before answering (set_latency adds a global delay
                     that applies in any mode, on top)
    http429          BEFORE anything is recorded: 429, {"error":"Too many requests"},
                     Retry-After
    error            BEFORE anything is recorded: 200 {"error": text} (default "Not enough
                     funds on balance"; any text, e.g. "neworder.error.not_enough_funds")
    http502_html     AFTER the action ran (an add has created, charged and counted the
                     order): 502 with an nginx HTML page
    http200_html     AFTER: 200 with an HTML challenge page (text/html)
    truncated_json   AFTER: 200 application/json whose body is the first half of the real
                     answer (the Content-Length matches: the JSON itself is cut)
    empty_object     AFTER: 200 `{}`
    close            AFTER: the connection is closed without a single byte of reply
    hang_after_add   AFTER (action defaults to add): no reply; the connection is held until
                     the client closes it, `hang_seconds` (60) pass or the simulator stops
    refuse           the listening socket is closed, connections are refused (and open ones
                     cut) until `recover` listens again on the same port
The AFTER faults are what make an add's outcome unknown to a client: the provider has
bought the order once (the add counter shows it) but the client cannot tell.

Dialect (sloppier providers): ids `service`/`order`/`refill` as strings, money and counts
as JSON numbers, booleans 0/1, statuses spelled "Inprogress", "In Progress", "Cancelled",
"cancelled", "completed", ... and errors as raw keys (neworder.error.not_enough_funds,
error.incorrect_service_id, neworder.error.link_duplicate, neworder.error.link,
neworder.error.min_quantity, neworder.error.max_quantity).

Control (GET /control: the state summary as JSON; POST /control: a JSON command object,
a list of them, or {"commands": [...]}; answers {"ok":true,"results":[...]} or HTTP 400
{"error": ...}). Each command is {"cmd": NAME, ...arguments}; the same names and
arguments are methods of Simulator:
    set_fault        mode, action=None, count=None, text=None, latency_ms=None,
                     retry_after=None, hang_seconds=None, seconds=None (refuse only)
    clear_fault      (also recovers from refuse)
    set_latency      ms
    set_dialect      on=True
    set_speed        seconds (null: orders move only on advance)
    set_duplicate_guard  on=True
    set_outcomes     partial=None, canceled=None, refill_rejected=None (fractions 0..1)
    advance          steps=None (None: to the final state), orders=None (None: every open
                     order and refill) -> {"orders": n, "refills": n}
    force_status     order, status, remains=None, start_count=None (terminal statuses
                     settle the refund; a non-terminal status holds the order there)
    set_outcome      order, status, remains=None (the final state it will reach)
    force_refill_status  refill, status
    set_service      service, name/type/category/rate/min/max/refill/cancel/dripfeed/desc
    add_service      name, type="Default", category="Other", rate="1.00", min=10,
                     max=10000, refill=False, cancel=False, dripfeed=False, desc="",
                     service=None -> the new service id
    remove_service   service
    set_balance      key, balance
    add_key          key, balance="1000000"
    reset_counters   (add counters and request counters)
    refuse           seconds (over HTTP defaults to 5 s, since the control endpoint goes
                     away with the listener; in-process None means until recover())
    recover
    reset            back to the freshly started state (catalogue, keys, no orders)
    summary, order   (order: the stored order as a dict)
Python only: advance_all(), add_counts() -> {(service, link, quantity): n},
add_count(service, link, quantity), adds_total(), request_counts(), balance(key),
services(), fault(), open_connections(), control(commands) (what POST /control runs).

Memory is bounded: at most `max_orders` orders (and as many refills) are kept, the oldest
finished ones evicted first; request bodies above `max_body_bytes` get 413.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import heapq
import itertools
import json
import random
import select
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from kernel import protocol as p
from kernel.money import MoneyFormatError, amount_for, money, refund_for_remains, to_decimal

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
DEFAULT_SERVICES = 40
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
_AFTER_MODES = frozenset({"hang_after_add", "http502_html", "http200_html", "truncated_json", "empty_object", "close"})
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

_RAW_KEY_BY_TEXT = {text: key for key, text in p.RAW_ERROR_KEYS.items()}

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
_DIALECT_STATUS = (
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
_DIALECT_REFILL_STATUS = (
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
_REFILL_TERMINAL = frozenset({p.REFILL_COMPLETED, p.REFILL_REJECTED})
_DEFAULT_TYPE = p.SERVICE_TYPES_BY_NAME["Default"]


class ControlError(ValueError):
    """A control command that cannot be carried out (unknown name, bad argument)."""


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# --- State ---------------------------------------------------------------------------------
@dataclass(slots=True)
class SimService:
    id: int
    name: str
    type: str
    category: str
    rate: Decimal
    min: int
    max: int
    refill: bool
    cancel: bool
    dripfeed: bool
    desc: str = ""


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


# --- Catalogue -----------------------------------------------------------------------------
# (network, product, rate range per 1000) for Default services.
_DEFAULT_PRODUCTS: tuple[tuple[str, str, float, float], ...] = (
    ("Instagram", "Followers", 0.40, 4.50),
    ("Instagram", "Likes", 0.05, 1.20),
    ("Instagram", "Views", 0.01, 0.30),
    ("Instagram", "Story Views", 0.02, 0.50),
    ("Instagram", "Reels Views", 0.01, 0.25),
    ("Instagram", "Saves", 0.05, 0.80),
    ("TikTok", "Followers", 0.80, 5.00),
    ("TikTok", "Likes", 0.10, 1.50),
    ("TikTok", "Views", 0.005, 0.20),
    ("TikTok", "Shares", 0.10, 0.90),
    ("YouTube", "Views", 0.60, 4.00),
    ("YouTube", "Subscribers", 8.00, 40.00),
    ("YouTube", "Likes", 0.50, 3.00),
    ("YouTube", "Watch Time Hours", 5.00, 25.00),
    ("Facebook", "Page Likes", 1.00, 8.00),
    ("Facebook", "Post Likes", 0.30, 2.50),
    ("Facebook", "Followers", 0.80, 6.00),
    ("Twitter", "Followers", 1.50, 12.00),
    ("Twitter", "Likes", 0.40, 4.00),
    ("Twitter", "Retweets", 0.60, 5.00),
    ("Twitter", "Views", 0.01, 0.20),
    ("Telegram", "Members", 0.50, 5.00),
    ("Telegram", "Post Views", 0.01, 0.15),
    ("Telegram", "Reactions", 0.05, 0.60),
    ("Spotify", "Plays", 0.30, 2.00),
    ("Spotify", "Followers", 0.50, 3.00),
    ("Twitch", "Followers", 0.50, 4.00),
    ("Twitch", "Live Viewers", 2.00, 15.00),
    ("Discord", "Members", 3.00, 20.00),
    ("SoundCloud", "Plays", 0.02, 0.40),
    ("LinkedIn", "Followers", 4.00, 25.00),
    ("Threads", "Followers", 1.00, 6.00),
)
# type -> (name, category, rate range, min choices, max choices)
_TYPE_TEMPLATES: dict[str, tuple[str, str, float, float, tuple[int, ...], tuple[int, ...]]] = {
    "Package": ("Instagram Starter Package [1K Likes + 500 Followers]", "Instagram Packages", 2.0, 20.0, (1,), (1,)),
    "SEO": ("Google Keyword Traffic [SEO]", "Website SEO", 1.0, 8.0, (100, 500), (10000, 100000)),
    "Custom Comments": ("Instagram Custom Comments", "Instagram Comments", 5.0, 30.0, (1, 5, 10), (500, 1000)),
    "Custom Comments Package": (
        "Instagram Custom Comments Package [10 Comments]",
        "Instagram Comments",
        1.0,
        6.0,
        (1,),
        (1,),
    ),
    "Mentions": ("Instagram Mentions", "Instagram Mentions", 2.0, 12.0, (100, 500), (10000, 50000)),
    "Mentions with Hashtags": (
        "Instagram Mentions [With Hashtags]",
        "Instagram Mentions",
        3.0,
        14.0,
        (100, 500),
        (10000, 50000),
    ),
    "Mentions Custom List": ("Instagram Mentions [Custom List]", "Instagram Mentions", 4.0, 16.0, (1, 10), (500, 1000)),
    "Mentions Hashtag": ("Instagram Mentions [Hashtag Posters]", "Instagram Mentions", 2.0, 12.0, (100, 500), (20000,)),
    "Mentions User Followers": (
        "Instagram Mentions [User Followers]",
        "Instagram Mentions",
        2.0,
        12.0,
        (100, 500),
        (20000, 50000),
    ),
    "Mentions Media Likers": (
        "Instagram Mentions [Media Likers]",
        "Instagram Mentions",
        2.0,
        12.0,
        (100, 500),
        (20000, 50000),
    ),
    "Comment Likes": ("Instagram Comment Likes", "Instagram Likes", 0.5, 4.0, (20, 50), (5000, 20000)),
    "Poll": ("Twitter Poll Votes", "Twitter Poll Votes", 0.8, 6.0, (50, 100), (10000, 100000)),
    "Comment Replies": ("YouTube Comment Replies", "YouTube Comments", 8.0, 40.0, (1, 5), (200, 1000)),
    "Invites from Groups": (
        "Telegram Members [Invites from Groups]",
        "Telegram Members",
        1.0,
        9.0,
        (100, 500),
        (10000, 50000),
    ),
    "Subscriptions": ("Instagram Auto Likes [Subscription]", "Instagram Auto Likes", 0.1, 1.5, (10, 50), (1000, 10000)),
    "Web Traffic": ("Website Traffic [Worldwide]", "Website Traffic", 0.1, 1.2, (100, 500), (100000, 1000000)),
}
_TAGS = ("HQ", "Real", "Non Drop", "Instant", "Fast", "Cheapest", "Mixed", "USA", "Premium", "Stable")
_SPEEDS = ("1K/Day", "5K/Day", "10K/Day", "20K/Day", "50K/Day", "100K/Day")
_STARTS = ("0-1 hour", "0-6 hours", "Instant", "0-24 hours", "0-30 minutes")


def _random_rate(rng: random.Random, low: float, high: float) -> Decimal:
    places = rng.choice((2, 2, 3, 4))
    value = max(rng.uniform(low, high), 10.0**-places)
    return Decimal(f"{value:.{places}f}")


def _describe(rng: random.Random, *, refill: bool, cancel: bool, dripfeed: bool, link_hint: str) -> str:
    lines = [f"Start: {rng.choice(_STARTS)}", f"Speed: {rng.choice(_SPEEDS)}"]
    lines.append(f"Refill: {rng.choice((30, 60, 90, 365))} days" if refill else "No refill")
    lines.append("Cancel button enabled" if cancel else "No cancel")
    if dripfeed:
        lines.append("Drip-feed available")
    lines.append(f"Link: {link_hint}")
    return "\n".join(lines)


def generate_catalogue(count: int = DEFAULT_SERVICES, seed: int = 1) -> list[SimService]:
    """`count` services; the first 17 cover every type of SERVICE_TYPES. Deterministic per seed."""
    rng = random.Random(seed)
    special = [t.name for t in p.SERVICE_TYPES if t.name != "Default"]
    services: list[SimService] = []
    for index in range(count):
        sid = index + 1
        if index < len(p.SERVICE_TYPES):
            type_name = p.SERVICE_TYPES[index].name
            # Deterministic flag variety in the first pass, so every catalogue has both.
            refill, cancel = index % 2 == 0, index % 3 != 2
        else:
            type_name = "Default" if rng.random() < 0.75 else rng.choice(special)
            refill, cancel = rng.random() < 0.5, rng.random() < 0.6
        stype = p.SERVICE_TYPES_BY_NAME[type_name]
        dripfeed = stype.dripfeed_capable and (index == 0 or rng.random() < 0.4)
        if type_name == "Default":
            network, product, low, high = (
                _DEFAULT_PRODUCTS[0] if index == 0 else _DEFAULT_PRODUCTS[rng.randrange(len(_DEFAULT_PRODUCTS))]
            )
            base, category = f"{network} {product}", f"{network} {product}"
            mins: tuple[int, ...] = (10, 20, 50, 100, 100, 500)
            maxes: tuple[int, ...] = (5000, 10000, 50000, 100000, 500000, 1000000)
            link_hint = f"{network} profile or post URL"
        else:
            base, category, low, high, mins, maxes = _TYPE_TEMPLATES[type_name]
            link_hint = "username" if type_name == "Subscriptions" else "post URL"
        tags = [rng.choice(_TAGS), f"Max {rng.choice(('10K', '50K', '100K', '1M'))}"]
        tags.append(f"Refill {rng.choice((30, 60, 90))}D" if refill else "No Refill")
        name = base if index < len(p.SERVICE_TYPES) else f"{base} [{'] ['.join(tags)}]"
        minimum = rng.choice(mins)
        maximum = max(rng.choice(maxes), minimum)
        services.append(
            SimService(
                id=sid,
                name=name,
                type=type_name,
                category=category,
                rate=_random_rate(rng, low, high),
                min=minimum,
                max=maximum,
                refill=refill,
                cancel=cancel,
                dripfeed=dripfeed,
                desc=_describe(rng, refill=refill, cancel=cancel, dripfeed=dripfeed, link_hint=link_hint),
            )
        )
    return services


# --- Parsing helpers -----------------------------------------------------------------------
def _parse_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    # isascii(): isdigit() also passes superscripts, which int() then refuses.
    if not text or not text.isascii() or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        return None
    return int(text)


def _flatten(name: str, value: object) -> str:
    if isinstance(value, list | tuple):
        sep = "," if name in ("orders", "refills") else "\n"
        return sep.join(_flatten(name, item) for item in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_params(query: str, body: bytes, content_type: str = "") -> dict[str, str]:
    """Request parameters from the query string, overridden by a form or JSON body."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    text = body.decode("utf-8", "replace")
    if "json" in content_type.lower() or text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            params.update({str(k): _flatten(str(k), v) for k, v in obj.items() if v is not None})
            return params
        if "json" in content_type.lower():
            return params
    params.update(parse_qsl(text, keep_blank_values=True))
    return params


def _valid_link(link: str) -> bool:
    return bool(link) and len(link) <= MAX_LINK_LENGTH and not any(ch.isspace() for ch in link)


def _id_out(raw: str) -> int | str:
    return int(raw) if raw.isascii() and raw.isdigit() else raw


# --- HTTP server ---------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up mid-reply (the fault tests do it on purpose) are not news.
        if self.sim.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SMMProviderSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 30  # idle keep-alive connections end

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> Simulator:
        return cast(_Server, self.server).sim

    def setup(self) -> None:
        super().setup()
        self.sim._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.sim._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.sim.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        body = self._read_body()
        if body is not None:
            self._dispatch(body)

    def _read_body(self) -> bytes | None:
        limit = self.sim.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    self._send(400, b'{"error":"Bad chunked body"}', close=True)
                    return None
                if size <= 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self._too_large()
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = _parse_int(self.headers.get("Content-Length", "0") or "0")
        if length is None or length < 0:
            self._send(400, b'{"error":"Bad Content-Length"}', close=True)
            return None
        if length > limit:
            self._too_large()
            return None
        return self.rfile.read(length) if length else b""

    def _too_large(self) -> None:
        self._send(413, b'{"error":"Request body too large"}', close=True)

    def _send(
        self,
        code: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, body: bytes) -> None:
        split = urlsplit(self.path)
        if split.path in API_PATHS:
            self._api(split.query, body)
        elif split.path in CONTROL_PATHS:
            self._control(body)
        else:
            self._send(404, b'{"error":"Not found"}')

    def _api(self, query: str, body: bytes) -> None:
        sim = self.sim
        params = parse_params(query, body, self.headers.get("Content-Type", ""))
        action = params.get("action", "").strip().lower()
        fault = sim._admit(action)
        delay_ms = sim.latency_ms + (fault.latency_ms if fault is not None and fault.mode == "latency" else 0)
        if delay_ms > 0:
            sim._stopping.wait(delay_ms / 1000)
        if fault is not None and fault.mode == "http429":
            retry = (("Retry-After", str(fault.retry_after)),)
            self._send(429, dumps({"error": ERR_TOO_MANY_REQUESTS}), headers=retry)
            return
        if fault is not None and fault.mode == "error":
            self._send(200, dumps({"error": fault.text}))
            return
        reply = sim.handle_api(params)
        if fault is None or fault.mode not in _AFTER_MODES:
            self._send(200, reply)
        elif fault.mode == "http502_html":
            self._send(502, HTML_502, content_type="text/html", close=True)
        elif fault.mode == "http200_html":
            self._send(200, HTML_CHALLENGE, content_type="text/html; charset=UTF-8")
        elif fault.mode == "truncated_json":
            self._send(200, reply[: max(1, len(reply) // 2)])
        elif fault.mode == "empty_object":
            self._send(200, b"{}")
        elif fault.mode == "close":
            self._drop()
        else:  # hang_after_add
            self._hang(fault.hang_seconds)
            self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hang(self, seconds: float) -> None:
        """Say nothing until the client hangs up, `seconds` pass or the simulator stops."""
        deadline = time.monotonic() + seconds
        stopping = self.sim._stopping
        while not stopping.is_set() and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.1)
                if readable:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed its end
                    stopping.wait(0.1)
            except (OSError, ValueError):
                return

    def _control(self, body: bytes) -> None:
        sim = self.sim
        if self.command == "GET":
            self._send(200, dumps(sim.summary()))
            return
        try:
            commands = _command_list(json.loads(body or b"{}"))
        except (ValueError, ControlError) as exc:
            self._send(400, dumps({"error": f"bad control body: {exc}"}))
            return
        results: list[Any] = []
        refuse_for: float | None = None
        try:
            for command in commands:
                if command.get("cmd") == "refuse" or (
                    command.get("cmd") == "set_fault" and command.get("mode") == "refuse"
                ):
                    # The listener goes away: answer first, and always come back on a timer.
                    refuse_for = float(command.get("seconds") or 5)
                    results.append({"refusing_for": refuse_for})
                    continue
                results.append(sim.run_command(command))
        except ControlError as exc:
            self._send(400, dumps({"error": str(exc), "results": results}))
            return
        self._send(200, dumps({"ok": True, "results": results}), close=refuse_for is not None)
        if refuse_for is not None:
            sim.refuse(seconds=refuse_for, _spare=self.connection)


def _command_list(obj: object) -> list[dict[str, Any]]:
    if isinstance(obj, dict) and "commands" in obj:
        obj = obj["commands"]
    if isinstance(obj, dict):
        obj = [obj]
    if not isinstance(obj, list) or not all(isinstance(item, dict) for item in obj):
        raise ControlError("expected a command object, a list of them, or {'commands': [...]}")
    return obj


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- The simulator -------------------------------------------------------------------------
class Simulator:
    """An upstream provider: state, the API v2 actions, faults, and the control commands."""

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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._server_lock = threading.Lock()
        self._refusing = False
        self._recover_timer: threading.Timer | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0
        self._reset_state()
        self._actions: dict[str, Callable[[str, Mapping[str, str]], Any]] = {
            "services": self._act_services,
            "add": self._act_add,
            "status": self._act_status,
            "refill": self._act_refill,
            "refill_status": self._act_refill_status,
            "cancel": self._act_cancel,
            "balance": self._act_balance,
        }

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

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        with self._server_lock:
            if self._server is not None or self._refusing:
                raise RuntimeError("the simulator is already running")
            self._stopping.clear()
            self.host = host
            self._listen(port)
        if self._fault is not None and self._fault.mode == "refuse":
            self._fault = None
            self.refuse(seconds=10)
        return self

    def _listen(self, port: int) -> None:
        last_error: OSError | None = None
        for _ in range(20):
            try:
                server = _Server((self.host, port), self)
                break
            except OSError as exc:  # the port may linger for a moment after refuse
                last_error = exc
                time.sleep(0.05)
        else:
            raise last_error or OSError("cannot listen")
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"provider-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def stop(self) -> None:
        self._stopping.set()
        with self._server_lock:
            if self._recover_timer is not None:
                self._recover_timer.cancel()
                self._recover_timer = None
            self._refusing = False
            self._close_listener()
        self._cut_connections()

    def __enter__(self) -> Simulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/v2"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/control"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _cut_connections(self, spare: socket.socket | None = None) -> None:
        with self._conns_lock:
            conns = [c for c in self._conns if c is not spare]
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def refuse(self, seconds: float | None = None, *, _spare: socket.socket | None = None) -> None:
        """Stop listening (connections are refused) until recover(), or for `seconds`."""
        with self._server_lock:
            if self._recover_timer is not None:
                self._recover_timer.cancel()
                self._recover_timer = None
            if not self._refusing:
                if self._server is None:
                    raise ControlError("the simulator is not running")
                self._refusing = True
                self._close_listener()
            if seconds is not None:
                self._recover_timer = threading.Timer(float(seconds), self.recover)
                self._recover_timer.daemon = True
                self._recover_timer.start()
        self._cut_connections(spare=_spare)

    def recover(self) -> None:
        with self._server_lock:
            if self._recover_timer is not None and self._recover_timer is not threading.current_thread():
                self._recover_timer.cancel()
            self._recover_timer = None
            if not self._refusing or self._stopping.is_set():
                return
            self._listen(self.port)
            self._refusing = False

    # --- API entry point ---------------------------------------------------------------
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
                text = _RAW_KEY_BY_TEXT.get(text, text)
        return {"error": text}

    # --- actions -----------------------------------------------------------------------
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
        sid = _parse_int(params.get("service"))
        svc = self._services.get(sid) if sid is not None else None
        if svc is None:
            return self._err(p.ERR_INCORRECT_SERVICE)
        stype = p.SERVICE_TYPES_BY_NAME.get(p.normalise_service_type(svc.type), _DEFAULT_TYPE)
        link = ""
        if "link" in stype.fields:
            link = params.get("link", "").strip()
            if not _valid_link(link):
                return self._err(p.ERR_INCORRECT_LINK)
        fields: dict[str, str] = {}
        runs = interval = None
        if stype.name == "Subscriptions":
            problem = self._check_subscription(svc, params, fields)
            if problem:
                return self._err(problem)
            # Up to max likes on each of `posts` posts: all of it is charged now, and what
            # is not delivered comes back when the subscription ends.
            posts = _parse_int(params.get("posts")) or SUBSCRIPTION_DEFAULT_POSTS
            quantity = int(fields["max"]) * posts
        else:
            if stype.quantity_from:
                items = p.split_list(params.get(stype.quantity_from, ""))
                quantity = len(items)
                fields[stype.quantity_from] = p.join_list(items)
            elif stype.has_quantity:
                quantity = _parse_int(params.get("quantity")) or 0
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
                runs, interval = _parse_int(params.get("runs")), _parse_int(params.get("interval"))
                if runs is None or runs < 1:
                    return self._err("Incorrect runs")
                if interval is None or interval < 1:
                    return self._err("Incorrect interval")
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
        for name in stype.fields:
            if name in ("link", "quantity", "runs", "interval") or name == stype.quantity_from:
                continue
            value = params.get(name, "").strip()
            if name in p.LIST_FIELDS:
                items = p.split_list(value)
                if name in stype.required and not items:
                    return f"Incorrect {name}"
                value = p.join_list(items)
            elif name in stype.required and not value:
                return f"Incorrect {name}"
            if name == "device" and value and _parse_int(value) not in range(1, 6):
                return "Incorrect device"
            if name == "type_of_traffic" and value and _parse_int(value) not in range(1, 4):
                return "Incorrect type_of_traffic"
            if name == "answer_number" and _parse_int(value) is None:
                return "Incorrect answer_number"
            if value:
                fields[name] = value
        return None

    def _check_subscription(self, svc: SimService, params: Mapping[str, str], fields: dict[str, str]) -> str | None:
        username = params.get("username", "").strip()
        if not username or any(ch.isspace() for ch in username):
            return "Incorrect username"
        low, high = _parse_int(params.get("min")), _parse_int(params.get("max"))
        if low is None or low < svc.min:
            return p.err_min_quantity(svc.min)
        if high is None or high > svc.max:
            return p.err_max_quantity(svc.max)
        if low > high:
            return "Incorrect max"
        if _parse_int(params.get("delay")) not in p.SUBSCRIPTION_DELAYS:
            return "Incorrect delay"
        for name in ("posts", "old_posts"):
            raw = params.get(name, "").strip()
            if raw and (_parse_int(raw) is None or int(raw) < 0):
                return f"Incorrect {name}"
        expiry = params.get("expiry", "").strip()
        if expiry:
            try:
                datetime.strptime(expiry, "%d/%m/%Y")
            except ValueError:
                return "Incorrect expiry"
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
        oid = _parse_int(raw)
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
                "status": _DIALECT_STATUS[o.id % 2][o.status],
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
        return raw if self.dialect else _id_out(raw)

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
        rid = _parse_int(raw)
        refill = self._refills.get(rid) if rid is not None else None
        if refill is None or refill.key != key:
            return self._err(p.ERR_REFILL_NOT_FOUND)
        return _DIALECT_REFILL_STATUS[refill.id % 2][refill.status] if self.dialect else refill.status

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

    # --- progression -------------------------------------------------------------------
    def _schedule(self, o: SimOrder, base: float) -> None:
        if self.speed is None or o.held or o.status in p.TERMINAL_STATUSES:
            o.next_at = None
            return
        o.next_at = base + self.speed
        heapq.heappush(self._heap, (o.next_at, next(self._seq), 0, o.id))

    def _schedule_refill(self, r: SimRefill, base: float) -> None:
        if self.speed is None or r.held or r.status in _REFILL_TERMINAL:
            r.next_at = None
            return
        r.next_at = base + self.speed
        heapq.heappush(self._heap, (r.next_at, next(self._seq), 1, r.id))

    def _process_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, kind, ident = heapq.heappop(heap)
            if kind == 0:
                order = self._orders.get(ident)
                if order is not None and order.next_at == at:
                    self._step_order(order, at)
            else:
                refill = self._refills.get(ident)
                if refill is not None and refill.next_at == at:
                    self._step_refill(refill, at)

    def _natural_outcome(self, o: SimOrder) -> tuple[str, int]:
        if o.outcome is not None:
            return o.outcome
        if o.roll < self.canceled:
            return p.CANCELED, o.quantity
        if o.roll < self.canceled + self.partial and o.quantity >= 2:
            return p.PARTIAL, 1 + int(o.roll_remains * (o.quantity - 1))
        return p.COMPLETED, 0

    def _step_order(self, o: SimOrder, at: float) -> None:
        o.held = False
        if o.status in p.TERMINAL_STATUSES:
            return
        if o.cancel_requested:
            self._finish(o, p.CANCELED, o.quantity)
            return
        if o.status == p.PENDING:
            o.status = p.IN_PROGRESS
            final_status, final_remains = self._natural_outcome(o)
            o.outcome = (final_status, final_remains)
            o.remains = o.quantity if final_status == p.CANCELED else final_remains + (o.quantity - final_remains) // 2
            self._schedule(o, at)
            return
        self._finish(o, *self._natural_outcome(o))

    def _finish(self, o: SimOrder, status: str, remains: int) -> None:
        o.status = status
        o.remains = remains
        o.next_at = None
        o.held = False
        if status == p.CANCELED:
            target = o.charge
        elif status == p.PARTIAL:
            target = refund_for_remains(charge=o.charge, remains=remains, quantity=o.quantity)
        else:
            target = Decimal("0")
        self._settle(o, target)
        if self._active.pop(o.id, None) is not None:
            link_key = (o.key, o.service, o.link)
            left = self._open_links.get(link_key, 1) - 1
            if left > 0:
                self._open_links[link_key] = left
            else:
                self._open_links.pop(link_key, None)
        self._finished.append(o.id)

    def _settle(self, o: SimOrder, target: Decimal) -> None:
        if target != o.refunded and o.key in self._balances:
            self._balances[o.key] += target - o.refunded
        o.refunded = target

    def _activate(self, o: SimOrder) -> None:
        if o.id not in self._active:
            self._active[o.id] = o
            link_key = (o.key, o.service, o.link)
            self._open_links[link_key] = self._open_links.get(link_key, 0) + 1

    def _step_refill(self, r: SimRefill, at: float) -> None:
        r.held = False
        if r.status in _REFILL_TERMINAL:
            return
        if r.status == p.REFILL_PENDING:
            r.status = p.REFILL_IN_PROGRESS
            self._schedule_refill(r, at)
            return
        rejected = r.outcome == p.REFILL_REJECTED or (r.outcome is None and r.roll < self.refill_rejected)
        self._finish_refill(r, p.REFILL_REJECTED if rejected else p.REFILL_COMPLETED)

    def _finish_refill(self, r: SimRefill, status: str) -> None:
        r.status = status
        r.next_at = None
        r.held = False
        self._active_refills.pop(r.id, None)

    def _evict_orders(self) -> None:
        while len(self._orders) > self.max_orders:
            victim: SimOrder | None = None
            while self._finished and victim is None:
                candidate = self._orders.get(self._finished.popleft())
                if candidate is not None and candidate.status in p.TERMINAL_STATUSES:
                    victim = candidate
            if victim is None:
                victim = next(iter(self._orders.values()))
            self._orders.pop(victim.id)
            if self._active.pop(victim.id, None) is not None:
                link_key = (victim.key, victim.service, victim.link)
                self._open_links[link_key] = self._open_links.get(link_key, 1) - 1
                if self._open_links[link_key] <= 0:
                    self._open_links.pop(link_key)

    # --- control commands (Python API; the HTTP control endpoint calls the same) ---------
    def run_command(self, command: Mapping[str, Any]) -> Any:
        args = dict(command)
        name = args.pop("cmd", None)
        if name not in self.CONTROL_COMMANDS:
            raise ControlError(f"unknown command {name!r}; known: {', '.join(self.CONTROL_COMMANDS)}")
        try:
            return _jsonable(getattr(self, name)(**args))
        except ControlError:
            raise
        except (TypeError, ValueError, KeyError, MoneyFormatError) as exc:
            raise ControlError(f"{name}: {exc}") from exc

    def control(self, commands: object) -> list[Any]:
        """Run control commands as the HTTP endpoint would (a dict, a list, or {"commands": [...]})."""
        return [self.run_command(c) for c in _command_list(commands)]

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
                    if r.status in _REFILL_TERMINAL:
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
            if canonical in _REFILL_TERMINAL:
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
            return _jsonable(
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


# --- Command line --------------------------------------------------------------------------
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
    write(f"Provider simulator: {sim.url} (control: {sim.control_url}); keys: {keys}; Ctrl-C stops it.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An upstream SMM provider speaking API v2.")
    add_arguments(parser)
    serve(vars(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
