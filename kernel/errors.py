"""Error reports (the 500 e-mail to staff) that carry no customer secret.

Django's SafeExceptionReporterFilter hides POST fields only on views decorated with
`sensitive_post_parameters`, and its reporter prints the query string (in the request URL,
GET, META's QUERY_STRING and the repr of `request` in every frame) untouched. API keys
travel as `key=` in query strings, form bodies and JSON bodies, so a report for a failing
API call would mail the customer's key to every address in ADMINS.

Two layers: parameters and variables with a sensitive name are replaced wherever the report
shows them, and the rendered report is then searched for the values those parameters had
(so a key that reached an exception message or a repr is caught as well).
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from django.http import HttpRequest, QueryDict
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from kernel.redact import SUBSTITUTE, scrub_pairs

# Request parameters and frame variables whose values are secrets. `key` is the API's.
SENSITIVE_NAME = re.compile(r"(?i)^(?:key|raw_key|api_?key|.*(?:password|passwd|secret|token|signature|sessionid).*)$")
# Shorter values are not searched for in the text: "1" would blank every digit.
MIN_SECRET_LENGTH = 6


class _Shown:
    """A frame variable as the report should print it (pprint uses its repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class ScrubbingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hides API keys, passwords and tokens in every part of an error report, for every
    view, whether or not it is decorated."""

    def request_secrets(self, request: HttpRequest | None) -> list[str]:
        """The values of the request's sensitive parameters (query, form or JSON body)."""
        if request is None:
            return []
        cached: list[str] | None = getattr(request, "_report_secrets", None)
        if cached is not None:
            return cached
        found: set[str] = set()
        for name, value in _request_pairs(request):
            if SENSITIVE_NAME.match(name) and len(value) >= MIN_SECRET_LENGTH:
                found.add(value)
        secrets = sorted(found, key=len, reverse=True)
        request._report_secrets = secrets  # type: ignore[attr-defined]
        return secrets

    def scrub(self, request: HttpRequest | None, text: str) -> str:
        text = scrub_pairs(text)
        for secret in self.request_secrets(request):
            text = text.replace(secret, SUBSTITUTE)
            escaped = html.escape(secret)
            if escaped != secret:
                text = text.replace(escaped, SUBSTITUTE)
        return text

    def _cleanse_dict(self, data: QueryDict) -> QueryDict:
        cleansed = data.copy()
        for name in cleansed:
            if SENSITIVE_NAME.match(name):
                cleansed.setlist(name, [SUBSTITUTE])
        return cleansed

    def get_cleansed_get(self, request: HttpRequest) -> QueryDict:
        return self._cleanse_dict(request.GET)

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        parameters = super().get_post_parameters(request)
        if request is None or not isinstance(parameters, QueryDict):
            return parameters
        return self._cleanse_dict(parameters)

    def get_cleansed_multivaluedict(self, request: HttpRequest, multivaluedict: Any) -> Any:
        value = super().get_cleansed_multivaluedict(request, multivaluedict)
        return self._cleanse_dict(value) if isinstance(value, QueryDict) else value

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        for name, value in meta.items():
            if isinstance(value, str):
                meta[name] = self.scrub(request, value)
        return meta

    def get_traceback_frame_variables(self, request: HttpRequest, tb_frame: Any) -> Any:
        shown = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if isinstance(name, str) and SENSITIVE_NAME.match(name):
                value = SUBSTITUTE
            elif value is not SUBSTITUTE:
                try:
                    text = repr(value)
                except Exception:  # noqa: BLE001 - Django's reporter copes with a failing repr itself
                    text = None
                if text is not None:
                    scrubbed = self.scrub(request, text)
                    if scrubbed != text:
                        value = _Shown(scrubbed)
            shown.append((name, value))
        return shown


class ScrubbingExceptionReporter(ExceptionReporter):
    """ExceptionReporter whose request URL, GET items and rendered text pass through the
    scrubbing filter (Django prints those without asking the filter)."""

    def _scrub(self, text: str) -> str:
        report_filter = self.filter
        if isinstance(report_filter, ScrubbingExceptionReporterFilter):
            return report_filter.scrub(self.request, text)
        return scrub_pairs(text)

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        if self.request is not None:
            if isinstance(self.filter, ScrubbingExceptionReporterFilter):
                data["request_GET_items"] = self.filter.get_cleansed_get(self.request).items()
            data["request_insecure_uri"] = self._scrub(data.get("request_insecure_uri", ""))
        for name in ("exception_value", "unicode_hint", "exception_notes"):
            if isinstance(data.get(name), str):
                data[name] = self._scrub(data[name])
        return data

    def get_traceback_text(self) -> SafeString:
        # Only secrets are cut out of the rendered report, so what was safe stays safe.
        return mark_safe(self._scrub(super().get_traceback_text()))  # noqa: S308

    def get_traceback_html(self) -> SafeString:
        return mark_safe(self._scrub(super().get_traceback_html()))  # noqa: S308


def _request_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    """Every (name, value) the request carries: query string, form body, JSON object body.
    Read defensively: the request may be the reason for the report."""
    pairs: list[tuple[str, str]] = []
    # A report is written whatever the query string or body holds (the error may be about it).
    with contextlib.suppress(Exception):
        pairs += parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    with contextlib.suppress(Exception):
        pairs += [(name, value) for name, values in request.POST.lists() for value in values]
    body = getattr(request, "_body", b"")
    if body and (request.content_type or "") == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            pairs += [(str(name), value) for name, value in data.items() if isinstance(value, str)]
    return pairs
