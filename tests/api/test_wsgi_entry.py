"""What gunicorn serves (smmpanel.wsgi.application): the API endpoint through its own short
middleware chain, every other page through the site's."""

from __future__ import annotations

import io
import json
import sys
from urllib.parse import urlencode

import pytest

from smmpanel.wsgi import application


def _call(path: str, *, body: bytes = b"", method: str = "POST", host: str = "testserver") -> tuple[str, dict, bytes]:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    seen: dict = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        seen["status"] = status
        seen["headers"] = {}
        for name, value in headers:
            seen["headers"].setdefault(name.lower(), []).append(value)

    chunks = application(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return seen["status"], seen["headers"], data


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v2", "/api/v2/"])
def test_api_requests_answer_without_session_or_csrf_and_keep_security_headers(key, path):
    status, headers, data = _call(path, body=urlencode({"key": key, "action": "balance"}).encode())
    assert status.startswith("200")
    assert json.loads(data)["balance"] == "100.00000"
    assert "set-cookie" not in headers
    assert "Cookie" not in ",".join(headers.get("vary", []))
    assert headers["content-security-policy"][0].startswith("default-src 'self'")
    assert headers["x-content-type-options"] == ["nosniff"]


@pytest.mark.django_db(transaction=True)
def test_api_requests_with_a_foreign_host_are_refused():
    status, _headers, _data = _call("/api/v2", body=b"action=balance", host="evil.example")
    assert status.startswith("400")


@pytest.mark.django_db(transaction=True)
def test_pages_still_go_through_sessions_and_csrf():
    status, headers, _data = _call("/accounts/login/", method="GET")
    assert status.startswith("200"), (status, headers)
    assert any(cookie.strip().startswith("csrftoken=") for cookie in headers.get("set-cookie", [])), headers
