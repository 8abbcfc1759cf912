"""gunicorn, started with the project's gunicorn.conf.py, never writes a query string (and so
never an API key sent as `?key=`) to its error log or its access log, even for a request
line it cannot parse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.ports import free_port, wait_port
from smmpanel.gunicorn_logging import scrub_query

ROOT = Path(__file__).resolve().parents[2]

MALFORMED = [
    b"GET /api/v2?key=SECRET_A\r\n\r\n",  # two parts: Invalid HTTP request line, written whole
    b"GET /api/v2?action=balance&key=SECRET_B\r\nHost: x\r\n\r\n",
    b"GET /api/v2?a=1 key=SECRET_C HTTP/1.1\r\n\r\n",  # a space in the query: Invalid HTTP Version
    b"key=SECRET_D /api/v2 HTTP/1.1\r\n\r\n",  # Invalid HTTP method
    b"GET /api/v2?key=SECRET_E HTTP/1.1\r\nBad Header\r\n\r\n",  # a broken header after a good line
    b"GET /api/v2?key=SECRET_F\x00 HTTP/1.1\r\n\r\n",
    b"GET http://x/api/v2?key=SECRET_G HTTP/1.1 extra\r\n\r\n",
]


def _send(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


@pytest.mark.timeout(120)
def test_gunicorn_logs_never_hold_a_query_string(tmp_path):
    port = free_port()
    error_log, access_log, output = tmp_path / "error.log", tmp_path / "access.log", tmp_path / "output.log"
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "DJANGO_DEBUG": "true"}
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "smmpanel.wsgi"]
    argv += ["--error-logfile", str(error_log), "--access-logfile", str(access_log)]
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_port(port, 60, alive=lambda: process.poll() is None, what="gunicorn")
            for line in MALFORMED:
                assert _send(port, line).startswith(b"HTTP/1.1 400"), line
            normal = _send(port, b"GET /api/openapi.json?key=SECRET_OK HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert normal.startswith(b"HTTP/1.1 200"), normal[:300]
            deadline = time.monotonic() + 20
            while "/api/openapi.json" not in access_log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(timeout=30)
    errors, access, printed = error_log.read_text(), access_log.read_text(), output.read_text()
    assert errors.count("Invalid") >= len(MALFORMED) - 1, errors
    assert "/api/openapi.json" in access and "/api/v2" in errors
    for text in (errors, access, printed):
        assert "SECRET" not in text, text


def test_scrub_query_keeps_method_and_path_of_a_bad_request_line():
    text = scrub_query("Invalid request from ip=1.2.3.4: Invalid HTTP request line: 'GET /api/v2?key=abc123'")
    assert "abc123" not in text and "GET /api/v2" in text
    assert (
        scrub_query("Error handling request /api/v2?key=abc123&x=1")
        == "Error handling request /api/v2?[query withheld]"
    )
    assert scrub_query("no query here?") == "no query here?"
