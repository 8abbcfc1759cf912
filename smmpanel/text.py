"""Rules for text that customers type and others see: links, names, subjects."""

from __future__ import annotations

import unicodedata

# Control and format characters (bidi overrides such as U+202E, zero-width characters, the
# byte-order mark), lone surrogates and line separators: invisible or reordering text, so
# `https://x.io/‮gpj.exe` is shown to staff and providers as something it is not.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in HIDDEN_CATEGORIES for ch in text)
