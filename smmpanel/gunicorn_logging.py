"""gunicorn's logger with no query strings: API keys travel as `?key=`.

gunicorn's access log has the query in `%(r)s`, `%(q)s` and the RAW_URI/QUERY_STRING
environ atoms, and its error log writes a malformed request line whole ("Invalid HTTP
request line: 'GET /api/v2?key=… HTTP/1.1 x'") and the URI of a request whose handling
failed ("Error handling request /api/v2?key=…"). This logger takes the query out of
every access atom and every error-log line, tracebacks included. `gunicorn.conf.py` sets
it as `logger_class`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

from kernel.redact import scrub_pairs

WITHHELD = "?[query withheld]"
# A `?` followed by anything up to a space or a quote: the query of a URI, wherever it is.
_QUERY = re.compile(r"\?[^\s'\"]+")
# gunicorn writes a malformed request line as the repr of the whole line; keep only the
# method and the path (without query) of it.
_BAD_LINE = re.compile(r"(Invalid HTTP request line: )(.*)", re.DOTALL)
_ACCESS_URI_ATOMS = ("r", "U", "q", "f", "{raw_uri}e", "{query_string}e", "{request_uri}e", "{http_referer}e")


def scrub_query(text: str) -> str:
    """The text with every URI query replaced and every `key=` value cut out."""
    text = _BAD_LINE.sub(_summarise_bad_line, text)
    return scrub_pairs(_QUERY.sub(WITHHELD, text))


def _summarise_bad_line(match: re.Match[str]) -> str:
    tokens = match.group(2).strip("'\"").split()
    shown = " ".join(token.split("?", 1)[0] for token in tokens[:2])[:200]
    return f"{match.group(1)}{shown!r} (the rest withheld)"


class ScrubQueryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is still logged, as its format string
            message = str(record.msg)
        record.msg, record.args = scrub_query(message), None
        if record.exc_info:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub_query(text)
        if record.stack_info:
            record.stack_info = scrub_query(record.stack_info)
        return True


class ScrubbingLogger(Logger):  # type: ignore[misc]
    """gunicorn.glogging.Logger that never writes a query string."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, ScrubQueryFilter) for f in log.filters):
                log.addFilter(ScrubQueryFilter())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name in _ACCESS_URI_ATOMS:
            value = atoms.get(name)
            # Most atoms hold neither: skip the regular expressions on every request.
            if isinstance(value, str) and ("?" in value or "=" in value):
                atoms[name] = scrub_query(value)
        atoms["q"] = "-"
        atoms["{query_string}e"] = "-"
        return atoms
