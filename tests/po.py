"""A small reader and writer of gettext .po files, for the catalogue checks and the browser
tests' pseudo-language (tests/e2e/i18n_check.py). Only what `makemessages` writes is read:
comments, flags, msgctxt, msgid, msgid_plural, msgstr and msgstr[n], obsolete (#~) entries.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str
    msgstr: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    plurals: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def translations(self) -> list[str]:
        return [self.plurals[n] for n in sorted(self.plurals)] if self.msgid_plural is not None else [self.msgstr]

    @property
    def translated(self) -> bool:
        return all(self.translations)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags


_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")


def parse(text: str) -> list[Entry]:
    """Every entry, the header (msgid "") first when there is one."""
    entries: list[Entry] = []
    current: Entry | None = None
    flags: set[str] = set()
    field_name: str | None = None
    plural_index = 0

    def finish() -> None:
        nonlocal current
        if current is not None:
            entries.append(current)
        current = None

    for raw in text.splitlines():
        line = raw.strip()
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
        if not line:
            finish()
            field_name = None
            continue
        if line.startswith("#,"):
            finish()
            flags = {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            continue
        if line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, index, literal = match.groups()
            value = ast.literal_eval(literal)
            if (
                keyword in ("msgctxt", "msgid")
                and current is not None
                and (keyword == "msgctxt" or field_name != "msgctxt")
            ):
                finish()
            if current is None:
                current = Entry(msgid="", flags=flags, obsolete=obsolete)
                flags = set()
            field_name = keyword if index is None else "msgstr[]"
            plural_index = int(index) if index is not None else 0
            _set(current, field_name, plural_index, value)
        elif line.startswith('"') and current is not None and field_name is not None:
            _append(current, field_name, plural_index, ast.literal_eval(line))
    finish()
    return entries


def _set(entry: Entry, name: str, index: int, value: str) -> None:
    if name == "msgctxt":
        entry.msgctxt = value
    elif name == "msgid":
        entry.msgid = value
    elif name == "msgid_plural":
        entry.msgid_plural = value
    elif name == "msgstr":
        entry.msgstr = value
    else:
        entry.plurals[index] = value


def _append(entry: Entry, name: str, index: int, value: str) -> None:
    if name == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + value
    elif name == "msgid":
        entry.msgid += value
    elif name == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + value
    elif name == "msgstr":
        entry.msgstr += value
    else:
        entry.plurals[index] = entry.plurals.get(index, "") + value


def read(path: Path) -> list[Entry]:
    return parse(path.read_text(encoding="utf-8"))


def messages(path: Path) -> list[Entry]:
    """The live entries: neither the header nor obsolete ones."""
    return [e for e in read(path) if e.msgid and not e.obsolete]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def write(path: Path, entries: list[Entry], *, plural_forms: str = "nplurals=2; plural=(n != 1);") -> None:
    """A catalogue with a proper header, for msgfmt."""
    lines = [
        'msgid ""',
        'msgstr ""',
        _quote("Content-Type: text/plain; charset=UTF-8\n"),
        _quote(f"Plural-Forms: {plural_forms}\n"),
        "",
    ]
    for entry in entries:
        if entry.flags - {"fuzzy"}:
            lines.append("#, " + ", ".join(sorted(entry.flags - {"fuzzy"})))
        if entry.msgctxt is not None:
            lines.append(f"msgctxt {_quote(entry.msgctxt)}")
        lines.append(f"msgid {_quote(entry.msgid)}")
        if entry.msgid_plural is not None:
            lines.append(f"msgid_plural {_quote(entry.msgid_plural)}")
            for n in sorted(entry.plurals):
                lines.append(f"msgstr[{n}] {_quote(entry.plurals[n])}")
        else:
            lines.append(f"msgstr {_quote(entry.msgstr)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc%]|%[sdifr]|\{(\w*)\}")


def placeholders(text: str) -> list[str]:
    """Python placeholders in a text: %(name)s, %s, {name} (sorted, with repeats)."""
    return sorted(match.group(0) for match in PLACEHOLDER.finditer(text) if match.group(0) != "%%")


def compile_catalogue(folder: Path, locale: str, entries: list[Entry], *, plural_forms: str | None = None) -> Path:
    """Write and compile <folder>/<locale>/LC_MESSAGES/django.mo (GNU msgfmt) for LOCALE_PATHS."""
    import subprocess

    source = folder / locale / "LC_MESSAGES" / "django.po"
    write(source, entries, **({"plural_forms": plural_forms} if plural_forms else {}))
    target = source.with_suffix(".mo")
    subprocess.run(["msgfmt", "-o", str(target), str(source)], check=True, capture_output=True, timeout=120)
    return target
