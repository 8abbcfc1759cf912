"""Finding text on a page that was never translated.

Two checks, for any page a browser test has open:

- **The pseudo-language** (`pseudo_language`, then `unmarked_texts`): a language made up by
  the test from every English msgid the panel, allauth and Django know, each translation
  wrapped in ⟦ ⟧ and compiled into a temporary LOCALE_PATHS folder. A page rendered in it
  shows every translated text between the markers, so any visible text with a letter outside
  them was never marked for translation, whatever the real catalogues hold.
- **A real language** (`english_texts`): visible text that is exactly an English msgid whose
  translation in that language differs from it (or is still missing): marked, but shown in
  English.

What a page shows of people's and providers' data (usernames, service names, links, ticket
text) is not the panel's to translate: give seeded data names without letters, pass the
texts to `allowed`, or mark the element that shows data with the `data-i18n-skip` attribute
(it and everything inside it are skipped; so are `translate="no"`, code, pre and scripts).
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.utils.translation import to_locale

from tests import po

PSEUDO = "xx"  # a code no real language uses
OPEN, CLOSE = "⟦", "⟧"
ROOT = Path(__file__).resolve().parents[2]

# Every text a person reads on the page: visible text nodes (the chosen option of a select,
# not the others), and the attributes people read (placeholder, title, aria-label, alt,
# the value of input buttons).
_VISIBLE_TEXTS = """
() => {
  const skip = "script,style,noscript,template,code,pre,[data-i18n-skip],[translate=no]";
  const shown = (el) => {
    if (!el || el.closest(skip)) return false;
    if (el.checkVisibility && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return false;
    return el.getClientRects().length > 0;
  };
  // Every text node in document order, with whether it is shown: a translated sentence with a
  // link inside spans several nodes, so the markers are matched across them.
  const nodes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    const el = node.parentElement;
    if (!text || !el || el.closest("script,style,template,option,select")) continue;
    nodes.push([text, shown(el)]);
  }
  const extras = [];
  document.querySelectorAll("select").forEach((select) => {
    const option = select.selectedOptions[0];
    if (option && shown(select)) extras.push(option.textContent.replace(/\\s+/g, " ").trim());
  });
  document.querySelectorAll("[placeholder],[title],[aria-label],img[alt],input[type=submit],input[type=button]")
    .forEach((el) => {
      if (el.closest(skip)) return;
      for (const name of ["placeholder", "title", "aria-label", "alt"]) {
        const value = (el.getAttribute(name) || "").trim();
        if (value) extras.push(value);
      }
      if (el.matches("input[type=submit],input[type=button]") && el.value) extras.push(el.value.trim());
    });
  extras.push(document.title.trim());
  return {nodes: nodes, extras: extras.filter(Boolean)};
}
"""

LETTER = re.compile(r"[^\W\d_]")
_MARKED = re.compile(re.escape(OPEN) + r"[^" + OPEN + CLOSE + r"]*" + re.escape(CLOSE))


def _page_texts(page: Any) -> tuple[list[tuple[str, bool]], list[str]]:
    found = page.evaluate(_VISIBLE_TEXTS)
    return [(text, bool(shown)) for text, shown in found["nodes"]], list(found["extras"])


def visible_texts(page: Any) -> list[str]:
    nodes, extras = _page_texts(page)
    return [text for text, shown in nodes if shown] + extras


def _outside_markers(nodes: list[tuple[str, bool]]) -> list[tuple[str, str]]:
    """(text, the part of it outside every ⟦ ⟧) for each shown node, markers matched across
    nodes in document order."""
    depth = 0
    result = []
    for text, shown in nodes:
        outside = []
        for char in text:
            if char == OPEN:
                depth += 1
            elif char == CLOSE:
                depth = max(0, depth - 1)
            elif depth == 0:
                outside.append(char)
        if shown:
            result.append((text, "".join(outside)))
    return result


def _source_catalogues() -> list[Path]:
    """Catalogues holding every English msgid: the panel's (any shipped language: they all
    have the same msgids), and allauth's and Django's own (Spanish is complete in both)."""
    import allauth

    ours = next(iter(sorted((ROOT / "locale").glob("*/LC_MESSAGES/django.po"))), None)
    found = [ours] if ours else []
    django_root = Path(django.__file__).parent
    found += [django_root / "conf" / "locale" / "es" / "LC_MESSAGES" / "django.po"]
    found += sorted((django_root / "contrib").glob("*/locale/es/LC_MESSAGES/django.po"))
    found += [Path(allauth.__file__).parent / "locale" / "es" / "LC_MESSAGES" / "django.po"]
    return [path for path in found if path.is_file()]


def _mark(text: str) -> str:
    """⟦text⟧, inside the text's leading and trailing newlines (msgfmt wants them kept)."""
    core = text.strip("\n")
    start = len(text) - len(text.lstrip("\n"))
    return text[:start] + OPEN + core + CLOSE + text[start + len(core) :]


def _wrapped(entry: po.Entry) -> po.Entry:
    plurals = {}
    if entry.msgid_plural is not None:
        plurals = {0: _mark(entry.msgid), 1: _mark(entry.msgid_plural)}
    return po.Entry(
        msgid=entry.msgid,
        msgstr=_mark(entry.msgid),
        msgctxt=entry.msgctxt,
        msgid_plural=entry.msgid_plural,
        plurals=plurals,
    )


def pseudo_language(folder: Path, settings_fixture: Any) -> str:
    """Compile the pseudo-language into `folder`, make it a language of the panel (with the
    pytest-django `settings` fixture) and return its code."""
    if shutil.which("msgfmt") is None:
        raise RuntimeError("the pseudo-language needs GNU gettext's msgfmt (make gettext-deps)")
    entries: dict[tuple[str | None, str], po.Entry] = {}
    for path in _source_catalogues():
        for entry in po.messages(path):
            entries.setdefault(entry.key, _wrapped(entry))
    po.compile_catalogue(folder, PSEUDO, list(entries.values()))
    settings_fixture.LOCALE_PATHS = [folder, *settings.LOCALE_PATHS]
    settings_fixture.LANGUAGES = [*settings.LANGUAGES, (PSEUDO, "Pseudo")]
    return PSEUDO


def _unmarked_rest(text: str) -> str:
    previous = None
    while previous != text:  # a translated text inside another one: ⟦Order ⟦Pending⟧⟧
        previous, text = text, _MARKED.sub(" ", text)
    return text


def unmarked_texts(page: Any, *, allowed: Iterable[str] = ()) -> list[str]:
    """Visible texts of a page rendered in the pseudo-language that hold a letter outside
    the markers: never marked for translation. `allowed`: data the page shows (names,
    currency codes, the panel's name), removed before looking for letters."""
    allowed = sorted({a for a in allowed if a}, key=len, reverse=True)
    nodes, extras = _page_texts(page)
    found = []
    for text, rest in _outside_markers(nodes) + [(extra, _unmarked_rest(extra)) for extra in extras]:
        for data in allowed:
            rest = rest.replace(data, " ")
        if LETTER.search(rest):
            found.append(text)
    return sorted(set(found))


def english_texts(page: Any, language: str, *, catalogue: Path | None = None) -> list[str]:
    """Visible texts that are an English msgid of the panel's catalogue whose translation in
    `language` differs from it or is missing: shown in English on a page in `language`."""
    path = catalogue or ROOT / "locale" / to_locale(language) / "LC_MESSAGES" / "django.po"
    differs = _english_msgids(path, path.stat().st_mtime_ns)
    return sorted({text for text in visible_texts(page) if text in differs})


@functools.lru_cache(maxsize=16)
def _english_msgids(path: Path, mtime_ns: int) -> frozenset[str]:
    """The msgids of a catalogue whose translation differs from them or is missing, read
    once per version of the file (a page check runs for many pages of one language)."""
    return frozenset(
        entry.msgid
        for entry in po.messages(path)
        if entry.msgid_plural is None and entry.msgstr != entry.msgid and LETTER.search(entry.msgid)
    )
