"""API v2, the wire protocol spoken to providers (as a client) and to customers (as a server).

Both `providers/client.py` and `api/` import these definitions, so the two sides and the
documentation page cannot drift apart. See shared/API_V2.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from .money import money

MAX_IDS = 100


def gettext_noop(text: str) -> str:
    """Marks a text for the translation catalogues (`make messages` finds this name) and
    returns it unchanged: the protocol's texts are English on the wire, always. The web pages
    show the same texts translated, through the `translate` argument below (gettext)."""
    return text


def _same(text: str) -> str:
    return text


Translate = Callable[[str], str]

# --- Error texts (exactly as real clients compare them) -----------------------------------
ERR_INCORRECT_REQUEST = gettext_noop("Incorrect request")
ERR_INVALID_KEY = gettext_noop("Invalid API key")
ERR_INCORRECT_SERVICE = gettext_noop("Incorrect service ID")
ERR_NOT_ENOUGH_FUNDS = gettext_noop("Not enough funds on balance")
ERR_INCORRECT_LINK = gettext_noop("Incorrect link")
ERR_DUPLICATE_LINK = gettext_noop("You have active order with this link. Please wait until order being completed.")
ERR_INCORRECT_ORDER = gettext_noop("Incorrect order ID")
ERR_REFILL_NOT_FOUND = gettext_noop("Refill not found")
ERR_TOO_MANY_IDS = f"Too many IDs, at most {MAX_IDS} per request"


def err_min_quantity(minimum: int, translate: Translate = _same) -> str:
    return translate(gettext_noop("Quantity less than minimal %(minimum)s")) % {"minimum": minimum}


def err_max_quantity(maximum: int, translate: Translate = _same) -> str:
    return translate(gettext_noop("Quantity more than maximum %(maximum)s")) % {"maximum": maximum}


# Providers in the wild answer with raw translation keys; map them to the texts above.
RAW_ERROR_KEYS = {
    "neworder.error.not_enough_funds": ERR_NOT_ENOUGH_FUNDS,
    "error.incorrect_service_id": ERR_INCORRECT_SERVICE,
    "neworder.error.link_duplicate": ERR_DUPLICATE_LINK,
    "neworder.error.link": ERR_INCORRECT_LINK,
    "neworder.error.min_quantity": "Quantity less than minimal",
    "neworder.error.max_quantity": "Quantity more than maximum",
}


def normalise_error(text: str) -> str:
    cleaned = text.strip()
    return RAW_ERROR_KEYS.get(cleaned.lower(), cleaned)


# Errors that mean the provider account (ours) is the problem, not the customer's order.
PROVIDER_SIDE_ERRORS = (ERR_NOT_ENOUGH_FUNDS, ERR_INVALID_KEY)

# --- Order statuses -----------------------------------------------------------------------
PENDING = "Pending"
IN_PROGRESS = "In progress"
PROCESSING = "Processing"
COMPLETED = "Completed"
PARTIAL = "Partial"
CANCELED = "Canceled"
ORDER_STATUSES = (PENDING, IN_PROGRESS, PROCESSING, COMPLETED, PARTIAL, CANCELED)
TERMINAL_STATUSES = frozenset({COMPLETED, PARTIAL, CANCELED})

_STATUS_ALIASES = {
    "pending": PENDING,
    "in progress": IN_PROGRESS,
    "inprogress": IN_PROGRESS,
    "in_progress": IN_PROGRESS,
    "processing": PROCESSING,
    "completed": COMPLETED,
    "complete": COMPLETED,
    "partial": PARTIAL,
    "canceled": CANCELED,
    "cancelled": CANCELED,
    # Subscriptions report their own words; customers see them in the order vocabulary.
    "active": IN_PROGRESS,
    "paused": PROCESSING,
    "expired": COMPLETED,
}


def normalise_status(raw: object) -> str | None:
    """Canonical order status for what a provider wrote, or None when it is not one."""
    if not isinstance(raw, str):
        return None
    return _STATUS_ALIASES.get(re.sub(r"\s+", " ", raw.strip().lower()))


# --- Refill statuses ------------------------------------------------------------------------
REFILL_PENDING = "Pending"
REFILL_IN_PROGRESS = "In progress"
REFILL_COMPLETED = "Completed"
REFILL_REJECTED = "Rejected"
REFILL_STATUSES = (REFILL_PENDING, REFILL_IN_PROGRESS, REFILL_COMPLETED, REFILL_REJECTED)
_REFILL_ALIASES = {
    "pending": REFILL_PENDING,
    "in progress": REFILL_IN_PROGRESS,
    "inprogress": REFILL_IN_PROGRESS,
    "processing": REFILL_IN_PROGRESS,
    "completed": REFILL_COMPLETED,
    "rejected": REFILL_REJECTED,
    "canceled": REFILL_REJECTED,
    "cancelled": REFILL_REJECTED,
}


def normalise_refill_status(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    return _REFILL_ALIASES.get(re.sub(r"\s+", " ", raw.strip().lower()))


# --- The fields of an order, once ---------------------------------------------------------
# Every layer derives from this table: the order parser (its checks and error texts), the
# new-order form (its widgets, labels and order on the page), the API page's documentation
# and the provider simulator. A new field is one line here plus its place in SERVICE_TYPES.
FIELD_LINK = "link"  # an absolute http(s) URL
FIELD_NUMBER = "number"  # a whole number within [minimum, maximum]
FIELD_LIST = "list"  # one item a line (or comma-separated on one line)
FIELD_TEXT = "text"  # one line
FIELD_CHOICE = "choice"  # one of `choices`
FIELD_DATE = "date"  # d/m/Y


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str  # what a person reads; errors say "Incorrect <label in lower case>"
    kind: str
    description: str  # for the API documentation
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[int, ...] = ()
    max_length: int = 500


SUBSCRIPTION_DELAYS = (0, 5, 10, 15, 20, 30, 40, 50, 60, 90, 120, 150, 180, 210, 240, 270, 300, 360, 420, 480, 540, 600)
MAX_RUNS = 10_000
MAX_INTERVAL_MINUTES = 60 * 24 * 30

# In the order the new-order page shows them.
FIELD_SPECS: tuple[FieldSpec, ...] = (
    FieldSpec("link", gettext_noop("Link"), FIELD_LINK, gettext_noop("Link to the page"), max_length=2000),
    FieldSpec("quantity", gettext_noop("Quantity"), FIELD_NUMBER, gettext_noop("Needed quantity"), minimum=1),
    FieldSpec(
        "runs",
        gettext_noop("Runs"),
        FIELD_NUMBER,
        gettext_noop("Drip-feed: runs to deliver"),
        minimum=1,
        maximum=MAX_RUNS,
    ),
    FieldSpec(
        "interval",
        gettext_noop("Interval (minutes)"),
        FIELD_NUMBER,
        gettext_noop("Drip-feed: minutes between runs"),
        minimum=1,
        maximum=MAX_INTERVAL_MINUTES,
    ),
    FieldSpec("comments", gettext_noop("Comments"), FIELD_LIST, gettext_noop("Comments, one per line")),
    FieldSpec("usernames", gettext_noop("Usernames"), FIELD_LIST, gettext_noop("Usernames, one per line")),
    FieldSpec("hashtags", gettext_noop("Hashtags"), FIELD_LIST, gettext_noop("Hashtags, one per line")),
    FieldSpec("keywords", gettext_noop("Keywords"), FIELD_LIST, gettext_noop("Keywords, one per line")),
    FieldSpec("groups", gettext_noop("Groups"), FIELD_LIST, gettext_noop("Groups, one per line")),
    FieldSpec("hashtag", gettext_noop("Hashtag"), FIELD_TEXT, gettext_noop("Hashtag to scrape users from")),
    FieldSpec("username", gettext_noop("Username"), FIELD_TEXT, gettext_noop("Username")),
    FieldSpec(
        "media",
        gettext_noop("Media link"),
        FIELD_LINK,
        gettext_noop("Media URL to scrape likers from"),
        max_length=2000,
    ),
    FieldSpec(
        "answer_number",
        gettext_noop("Answer number"),
        FIELD_NUMBER,
        gettext_noop("Answer number of the poll"),
        minimum=1,
    ),
    FieldSpec("country", gettext_noop("Country"), FIELD_TEXT, gettext_noop("Country code or name")),
    FieldSpec("device", gettext_noop("Device"), FIELD_NUMBER, gettext_noop("Device 1–5"), minimum=1, maximum=5),
    FieldSpec(
        "type_of_traffic",
        gettext_noop("Type of traffic"),
        FIELD_NUMBER,
        gettext_noop("Type of traffic 1–3"),
        minimum=1,
        maximum=3,
    ),
    FieldSpec("google_keyword", gettext_noop("Google keyword"), FIELD_TEXT, gettext_noop("Google keyword")),
    FieldSpec(
        "referring_url", gettext_noop("Referring URL"), FIELD_LINK, gettext_noop("Referring URL"), max_length=2000
    ),
    FieldSpec("min", gettext_noop("Min per post"), FIELD_NUMBER, gettext_noop("Quantity min per post"), minimum=1),
    FieldSpec("max", gettext_noop("Max per post"), FIELD_NUMBER, gettext_noop("Quantity max per post"), minimum=1),
    FieldSpec("posts", gettext_noop("Posts"), FIELD_NUMBER, gettext_noop("New posts count"), minimum=1),
    FieldSpec("old_posts", gettext_noop("Old posts"), FIELD_NUMBER, gettext_noop("Old posts count"), minimum=0),
    FieldSpec(
        "delay",
        gettext_noop("Delay (minutes)"),
        FIELD_CHOICE,
        "Delay in minutes: " + ", ".join(str(d) for d in SUBSCRIPTION_DELAYS),
        choices=SUBSCRIPTION_DELAYS,
    ),
    FieldSpec("expiry", gettext_noop("Expiry"), FIELD_DATE, gettext_noop("Expiry date, d/m/Y")),
)
FIELDS = {f.name: f for f in FIELD_SPECS}
LIST_FIELDS = frozenset(f.name for f in FIELD_SPECS if f.kind == FIELD_LIST)


def field_label(name: str, translate: Translate = _same) -> str:
    """A field's name as a sentence reads it ("Interval", not "Interval (minutes)")."""
    spec = FIELDS.get(name)
    return translate(spec.label).split(" (")[0] if spec else name


def field_error(name: str, translate: Translate = _same) -> str:
    """The error text for a field's bad value, the same from the panel and its simulator
    (pages pass gettext as `translate`; the wire text is the English one)."""
    return translate(gettext_noop("Incorrect %(field)s")) % {"field": field_label(name, translate).lower()}


def field_required(name: str, translate: Translate = _same) -> str:
    return translate(gettext_noop("%(field)s is required")) % {"field": field_label(name, translate)}


# --- What an order costs: the unit a service's rate is for ---------------------------------
# A service's `rate` is always published "per 1000", but what it buys depends on the type
# (API_V2.md, "What an order costs"). An order's `quantity` is the number of billed units:
BILL_PER_1000 = "per_1000"  # 1000 units (or list lines); quantity = units × runs
BILL_PER_PACKAGE = "per_package"  # one package; quantity = 1, charge = rate
BILL_PER_1000_PER_POST = "per_1000_per_post"  # subscriptions; quantity = max × posts
BILLING_UNITS = {
    BILL_PER_1000: "per 1000",
    BILL_PER_PACKAGE: "per package",
    BILL_PER_1000_PER_POST: "per 1000 per post",
}
# How many billed units the rate is the price of.
BILLING_DIVISOR = {BILL_PER_1000: 1000, BILL_PER_PACKAGE: 1, BILL_PER_1000_PER_POST: 1000}


# --- Service types and their fields ---------------------------------------------------------
@dataclass(frozen=True)
class ServiceType:
    name: str
    fields: tuple[str, ...]  # fields after `service`, in documentation order
    required: tuple[str, ...]
    quantity_from: str | None = None  # list field whose length is the quantity
    has_quantity: bool = True
    dripfeed_capable: bool = False
    billing: str = BILL_PER_1000  # the unit the rate is for, unless staff say otherwise
    # Other units a provider may bill this type by (staff choose one per service).
    other_billing: tuple[str, ...] = ()

    @property
    def billing_choices(self) -> tuple[str, ...]:
        return (self.billing, *self.other_billing)


SERVICE_TYPES: tuple[ServiceType, ...] = (
    ServiceType("Default", ("link", "quantity", "runs", "interval"), ("link", "quantity"), dripfeed_capable=True),
    ServiceType("Package", ("link",), ("link",), has_quantity=False, billing=BILL_PER_PACKAGE),
    ServiceType("SEO", ("link", "quantity", "keywords"), ("link", "quantity", "keywords")),
    ServiceType("Custom Comments", ("link", "comments"), ("link", "comments"), quantity_from="comments"),
    ServiceType(
        "Custom Comments Package",
        ("link", "comments"),
        ("link", "comments"),
        has_quantity=False,
        billing=BILL_PER_PACKAGE,
        other_billing=(BILL_PER_1000,),  # some providers bill the package per 1000 lines
    ),
    ServiceType("Mentions", ("link", "quantity", "usernames"), ("link", "quantity", "usernames")),
    ServiceType(
        "Mentions with Hashtags",
        ("link", "quantity", "usernames", "hashtags"),
        ("link", "quantity", "usernames", "hashtags"),
    ),
    ServiceType("Mentions Custom List", ("link", "usernames"), ("link", "usernames"), quantity_from="usernames"),
    ServiceType("Mentions Hashtag", ("link", "quantity", "hashtag"), ("link", "quantity", "hashtag")),
    ServiceType("Mentions User Followers", ("link", "quantity", "username"), ("link", "quantity", "username")),
    ServiceType("Mentions Media Likers", ("link", "quantity", "media"), ("link", "quantity", "media")),
    ServiceType("Comment Likes", ("link", "quantity", "username"), ("link", "quantity", "username")),
    ServiceType("Poll", ("link", "quantity", "answer_number"), ("link", "quantity", "answer_number")),
    ServiceType(
        "Comment Replies", ("link", "username", "comments"), ("link", "username", "comments"), quantity_from="comments"
    ),
    ServiceType("Invites from Groups", ("link", "quantity", "groups"), ("link", "quantity", "groups")),
    ServiceType(
        "Subscriptions",
        ("username", "min", "max", "posts", "old_posts", "delay", "expiry"),
        ("username", "min", "max", "delay"),
        has_quantity=False,
        billing=BILL_PER_1000_PER_POST,
        other_billing=(BILL_PER_PACKAGE,),  # a flat price per subscription
    ),
    ServiceType(
        "Web Traffic",
        (
            "link",
            "quantity",
            "runs",
            "interval",
            "country",
            "device",
            "type_of_traffic",
            "google_keyword",
            "referring_url",
        ),
        ("link", "quantity"),
        dripfeed_capable=True,
    ),
)
SERVICE_TYPES_BY_NAME = {t.name: t for t in SERVICE_TYPES}
_SERVICE_TYPES_LOWER = {t.name.lower(): t for t in SERVICE_TYPES}


def billing_of(service_type: str, override: str = "") -> str:
    """The unit a service's rate is for: the staff's choice when it fits the type, else the
    type's own (an unknown type bills per 1000)."""
    stype = SERVICE_TYPES_BY_NAME.get(service_type)
    if stype is None:
        return override if override in BILLING_UNITS else BILL_PER_1000
    return override if override in stype.billing_choices else stype.billing


def normalise_service_type(raw: object) -> str:
    """Canonical type name (case-insensitive match); unknown types pass through trimmed."""
    text = str(raw or "Default").strip()
    found = _SERVICE_TYPES_LOWER.get(re.sub(r"\s+", " ", text.lower()))
    return found.name if found else text


def split_list(value: str) -> list[str]:
    """Split a list field: one item a line (\\r\\n or \\n); a single line may use ', '."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    items = text.split("\n") if "\n" in text else text.split(",")
    return [item.strip() for item in items if item.strip()]


def join_list(items: list[str]) -> str:
    return "\n".join(items)


def status_fields(
    *, charge: Decimal, start_count: int | None, status: str, remains: int | None, quantity: int, currency: str
) -> dict[str, str]:
    """One order's fields as `status` answers them (and its webhooks tell them): strings,
    the charge exact, no start count as 0, remains unknown as 0 once Completed, else the
    whole quantity."""
    if remains is None:
        remains = 0 if status == COMPLETED else quantity
    return {
        "charge": f"{money(charge):f}",
        "start_count": str(start_count or 0),
        "status": status,
        "remains": str(remains),
        "currency": currency,
    }


def parse_ids(value: str) -> list[str]:
    """Comma-separated ids as sent (strings, order kept, blanks dropped)."""
    return [part.strip() for part in str(value).split(",") if part.strip()]
