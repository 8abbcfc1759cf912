import logging
import re

SUBSTITUTE = "********************"
# API keys travel as a `key` parameter; never let one reach a log line.
_KEY_RE = re.compile(r"(?i)\b(key|api_key)=([^&\s\"']+)")
# `name=value` pairs of a sensitive name in a query string, a URL or a message.
_PAIR = re.compile(r"(?i)(?<![A-Za-z0-9_])((?:api_?)?key|[a-z_]*(?:password|token|secret|signature))=([^&\s'\"<>]*)")


def scrub_pairs(text: str) -> str:
    """`key=...` (and other sensitive names) in a query string or URL, value replaced."""
    return _PAIR.sub(lambda m: f"{m.group(1)}={SUBSTITUTE}", text)


class RedactKeyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is still logged as is
                return True
            record.args = None
        if isinstance(record.msg, str):
            record.msg = _KEY_RE.sub(r"\1=[redacted]", record.msg)
        return True
