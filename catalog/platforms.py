"""The social platform a category or service is about, for its icon (Bootstrap Icons)."""

from __future__ import annotations

# Checked in order: "YouTube" before "tube", "Twitter"/"X" share one icon.
PLATFORMS = (
    ("instagram", ("instagram", "insta ", "ig ")),
    ("tiktok", ("tiktok", "tik tok")),
    ("youtube", ("youtube", "yt ")),
    ("facebook", ("facebook", "fb ")),
    ("twitter-x", ("twitter", "x.com", "x (twitter)", "tweet")),
    ("telegram", ("telegram",)),
    ("spotify", ("spotify",)),
    ("twitch", ("twitch",)),
    ("discord", ("discord",)),
    ("linkedin", ("linkedin",)),
    ("threads", ("threads",)),
    ("snapchat", ("snapchat",)),
)
DEFAULT = "globe"


def platform_of(*names: str) -> str:
    """The first platform named in any of `names` (category first, then service), else a globe."""
    for name in names:
        text = f"{name.lower()} "
        for platform, words in PLATFORMS:
            if any(word in text for word in words):
                return platform
    return DEFAULT
