import logging
import re

# API keys travel as a `key` parameter; never let one reach a log line.
_KEY_RE = re.compile(r"(?i)\b(key|api_key)=([^&\s\"']+)")


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
