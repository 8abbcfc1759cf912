"""The shipped catalogues (locale/<lang>/LC_MESSAGES/django.po) against the source.

- up to date: extracting the marked texts again (`make messages`, in a copy of the tree)
  gives exactly the msgids that are committed, for every shipped language;
- complete: no entry is untranslated or fuzzy (test_catalogue_is_fully_translated: it fails
  until the translators have filled in every entry that `make messages` added);
- placeholders: a translation keeps its original's %(name)s / {name} placeholders, and GNU
  msgfmt --check accepts the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation import to_locale

from tests import po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
SHIPPED = [code for code, _name in settings.LANGUAGES if code != "en"]
# What `make messages` reads (Makefile, MESSAGES_IGNORE): the production sources and templates.
NOT_SOURCES = {".venv", "var", "node_modules", "tests", "chaos", "devtools", "simulators", "bench", ".git", "locale"}


def catalogue(code: str) -> Path:
    return LOCALE / to_locale(code) / "LC_MESSAGES" / "django.po"


def _need_gettext() -> None:
    if shutil.which("xgettext") is None or shutil.which("msgfmt") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("GNU gettext is needed (make gettext-deps)")
        pytest.skip("needs GNU gettext (apt-get install gettext)")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[tuple[str | None, str]]]:
    """The msgids `make messages` would write now, extracted in a copy of the tree."""
    _need_gettext()
    copy = tmp_path_factory.mktemp("extract") / "tree"
    shutil.copytree(
        ROOT,
        copy,
        ignore=lambda folder, names: (
            [n for n in names if n in NOT_SOURCES and Path(folder) == ROOT] + [n for n in names if n == "__pycache__"]
        ),
        symlinks=False,
    )
    (copy / "locale").mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smmpanel.settings"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--keep-pot", "--no-obsolete", "-l", "es"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    yield {entry.key for entry in po.messages(copy / "locale" / "django.pot")}


def test_every_shipped_language_has_a_catalogue() -> None:
    missing = [code for code in SHIPPED if not catalogue(code).is_file()]
    assert not missing, f"no catalogue for {missing}: run `make messages`"
    assert next(code for code, _name in settings.LANGUAGES) == "en"


@pytest.mark.parametrize("code", SHIPPED)
def test_catalogue_is_up_to_date_with_the_source(code: str, extracted: set[tuple[str | None, str]]) -> None:
    committed = {entry.key for entry in po.messages(catalogue(code))}
    new = sorted(extracted - committed, key=str)
    gone = sorted(committed - extracted, key=str)
    assert not new and not gone, (
        f"locale/{to_locale(code)} is out of date with the source: run `make messages` and translate.\n"
        f"  not in the catalogue ({len(new)}): {[m for _c, m in new][:15]}\n"
        f"  no longer in the source ({len(gone)}): {[m for _c, m in gone][:15]}"
    )


@pytest.mark.translations
@pytest.mark.parametrize("code", SHIPPED)
def test_catalogue_is_fully_translated(code: str) -> None:
    """Fails while any entry is untranslated or fuzzy: the catalogues are filled in by the
    translators after `make messages`; a shipped language must be complete."""
    entries = po.read(catalogue(code))
    header = next((e for e in entries if not e.msgid and not e.obsolete), None)
    assert header is not None, f"locale/{to_locale(code)}: no header"
    assert not header.fuzzy, (
        f"locale/{to_locale(code)}: the header is still marked fuzzy; fill in Language and Plural-Forms, then drop the flag"
    )
    live = [e for e in entries if e.msgid and not e.obsolete]
    untranslated = [e.msgid for e in live if not e.translated]
    fuzzy = [e.msgid for e in live if e.fuzzy]
    assert not untranslated and not fuzzy, (
        f"locale/{to_locale(code)}: {len(untranslated)} of {len(live)} untranslated, {len(fuzzy)} fuzzy; "
        f"first: {(untranslated + fuzzy)[:10]}"
    )


@pytest.mark.parametrize("code", SHIPPED)
def test_translations_keep_their_placeholders(code: str) -> None:
    broken = []
    for entry in po.messages(catalogue(code)):
        if not ({"python-format", "python-brace-format"} & entry.flags):
            continue
        for n, text in enumerate(entry.translations):
            if not text:
                continue  # untranslated: the completeness test reports it
            original = entry.msgid if n == 0 or entry.msgid_plural is None else entry.msgid_plural
            # A plural form may leave out the count (Russian "one" reads without it).
            if set(po.placeholders(text)) - set(po.placeholders(original + (entry.msgid_plural or ""))) or (
                entry.msgid_plural is None and po.placeholders(text) != po.placeholders(original)
            ):
                broken.append((entry.msgid, text))
    assert not broken, f"locale/{to_locale(code)}: placeholders changed in {broken[:10]}"


@pytest.mark.parametrize("code", SHIPPED)
def test_msgfmt_accepts_the_catalogue(code: str) -> None:
    _need_gettext()
    result = subprocess.run(
        ["msgfmt", "--check", "-o", os.devnull, str(catalogue(code))], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_placeholder_check_catches_a_broken_translation(tmp_path: Path) -> None:
    """The check above fails on a translation that drops or renames a placeholder."""
    broken = tmp_path / "django.po"
    broken.write_text(
        '#, python-format\nmsgid "Order #%(id)s placed"\nmsgstr "Pedido #%(pk)s hecho"\n', encoding="utf-8"
    )
    (entry,) = po.messages(broken)
    assert po.placeholders(entry.msgid) != po.placeholders(entry.msgstr)
    result = subprocess.run(["msgfmt", "--check", "-o", os.devnull, str(broken)], capture_output=True, text=True)
    if shutil.which("msgfmt"):
        assert result.returncode != 0
