"""Rules for text that customers type and others see: links, names, subjects."""

from __future__ import annotations

import unicodedata

# Control and format characters (bidi overrides such as U+202E, zero-width characters, the
# byte-order mark), lone surrogates and line separators: invisible or reordering text, so
# `https://x.io/‮gpj.exe` is shown to staff and providers as something it is not.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in HIDDEN_CATEGORIES for ch in text)


# Free text (comments, usernames, hashtags) may carry emoji joined by U+200D and other
# format characters that are part of ordinary writing; what it may not carry is text that
# reorders or hides what follows, controls (a tab aside), lone surrogates or line separators.
REORDERING = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})


def has_unsafe_characters(text: str) -> bool:
    for ch in text:
        category = unicodedata.category(ch)
        if ord(ch) in REORDERING or category in ("Cs", "Zl", "Zp") or (category == "Cc" and ch != "\t"):
            return True
    return False
