"""The generated catalogue: deterministic per seed, every service type among the first services."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from kernel import protocol as p

DEFAULT_SERVICES = 40


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
