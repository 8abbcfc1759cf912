"""A customer's webhook receiver on loopback, for the tests and `make run`.

Framework-free (standard library only). It checks every delivery the way the Standard Webhooks
specification tells a receiver to (https://www.standardwebhooks.com/, written from the spec,
not from the panel's code): the secret is `whsec_` + base64, the key is the decoded bytes, the
signed content is `{webhook-id}.{webhook-timestamp}.{body}`, `webhook-signature` holds
space-separated `v1,<base64 HMAC-SHA256>` values of which one must match, and the timestamp
must be within five minutes. It records each delivery (valid or not) and answers:

- 204 when the signature is valid (or no secret is known yet), 400 when it is not;
- fault modes: `fail_rate` (that share answers 500), `fail_next` (the next N answer 500),
  `hang_rate` / `hang_seconds` (sleep before answering), `gone` (410 to everything),
  `redirect` (307 to elsewhere).

`POST /control` with `{"action": "faults", ...}`, `{"action": "secret", "secret": ...}`,
`{"action": "secrets", "secrets": {path: secret, ...}}` (one secret per receiving path, for
many endpoints on one receiver: `/hook/1`, `/hook/2`, ...), `{"action": "state"}` (every
delivery; `"bodies": false` leaves the bodies out) or `{"action": "reset"}`; `GET /` shows the
latest deliveries.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import html
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from simulators.web import SimulatorHandler

Json = dict[str, Any]
TOLERANCE_SECONDS = 300


def signature_valid(*, secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.split("_", 1)[1] if secret.startswith("whsec_") else secret)
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for candidate in headers.get("webhook-signature", "").split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value.encode()):
            return True
    return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class WebhookReceiver:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, secret: str = "", credentials: str = "") -> None:
        self.secret = secret
        self.secrets: dict[str, str] = {}  # by path; the path's own secret before `secret`
        self.credentials = Path(credentials) if credentials else None
        self.lock = threading.Lock()
        self.deliveries: list[Json] = []
        self.rng = random.Random()
        self.fail_rate = 0.0
        self.fail_next = 0
        self.hang_rate = 0.0
        self.hang_seconds = 0.0
        self.gone = False
        self.redirect = False
        self.server = _Server((host, port), _handler(self))
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> WebhookReceiver:
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _secret(self, path: str = "") -> str:
        if path in self.secrets:
            return self.secrets[path]
        if self.secret or self.credentials is None:
            return self.secret
        with contextlib.suppress(OSError, ValueError):
            return str(json.loads(self.credentials.read_text()).get("webhook_secret", ""))
        return ""

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, float]:
        """Record one delivery; return the status to answer and how long to wait first."""
        secret = self._secret(path)
        valid = signature_valid(secret=secret, headers=headers, body=body, now=time.time()) if secret else None
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self.lock:
            hang = self.hang_seconds if self.hang_rate and self.rng.random() < self.hang_rate else 0.0
            if self.gone:
                status = 410
            elif self.redirect:
                status = 307
            elif self.fail_next > 0:
                self.fail_next -= 1
                status = 500
            elif self.fail_rate and self.rng.random() < self.fail_rate:
                status = 500
            elif valid is False:
                status = 400
            else:
                status = 204
            self.deliveries.append(
                {
                    "id": headers.get("webhook-id", ""),
                    "timestamp": headers.get("webhook-timestamp", ""),
                    "signature": headers.get("webhook-signature", ""),
                    "path": path,
                    "valid": valid,
                    "status": status,
                    "hung": hang,
                    "body": payload,
                    "received_at": time.time(),
                }
            )
        return status, hang

    def accepted(self) -> list[Json]:
        """Deliveries answered 2xx, in arrival order."""
        with self.lock:
            return [d for d in self.deliveries if 200 <= d["status"] < 300]

    def control(self, command: Json) -> Json:
        action = command.get("action")
        with self.lock:
            if action == "faults":
                self.fail_rate = float(command.get("fail_rate", self.fail_rate))
                self.fail_next = int(command.get("fail_next", self.fail_next))
                self.hang_rate = float(command.get("hang_rate", self.hang_rate))
                self.hang_seconds = float(command.get("hang_seconds", self.hang_seconds))
                self.gone = bool(command.get("gone", self.gone))
                self.redirect = bool(command.get("redirect", self.redirect))
                return {"ok": True}
            if action == "secret":
                self.secret = str(command.get("secret", ""))
                return {"ok": True}
            if action == "secrets":
                found = command.get("secrets")
                if not isinstance(found, dict):
                    return {"error": "secrets must be an object of path: secret"}
                self.secrets.update({str(k): str(v) for k, v in found.items()})
                return {"ok": True}
            if action == "reset":
                self.deliveries.clear()
                self.secrets.clear()
                self.fail_rate = self.hang_rate = self.hang_seconds = 0.0
                self.fail_next = 0
                self.gone = self.redirect = False
                return {"ok": True}
            if action == "state":
                if command.get("bodies", True):
                    return {"deliveries": list(self.deliveries)}
                return {"deliveries": [{k: v for k, v in d.items() if k != "body"} for d in self.deliveries]}
        return {"error": f"unknown action {action!r}"}

    def page(self) -> str:
        with self.lock:
            latest = list(reversed(self.deliveries[-50:]))
        rows = "".join(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
                html.escape(time.strftime("%H:%M:%S", time.localtime(d["received_at"]))),
                html.escape(d["id"]),
                {True: "valid", False: "INVALID", None: "not checked"}[d["valid"]],
                d["status"],
                html.escape(json.dumps(d["body"])[:300]),
            )
            for d in latest
        )
        return (
            "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>Webhook receiver</title><h1>Webhook receiver</h1>"
            f"<p>{len(self.deliveries)} deliveries. Latest first.</p>"
            "<table border=1 cellpadding=4><tr><th>time</th><th>webhook-id</th><th>signature</th>"
            f"<th>answer</th><th>body</th></tr>{rows}</table>"
        )


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(SimulatorHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/":
                self._send(200, receiver.page(), content_type="text/html; charset=utf-8")
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/control":
                try:
                    command = json.loads(body or b"{}")
                    self._send(200, receiver.control(command if isinstance(command, dict) else {}))
                except (ValueError, TypeError) as exc:
                    self._send(400, {"error": str(exc)})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, hang = receiver.receive(self.path, headers, body)
            if hang:
                time.sleep(hang)
            if status == 307:
                self.send_response(307)
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if status == 204:
                self.send_response(204)
                self.end_headers()
                return
            self._send(status, {"status": status})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A local webhook receiver that checks Standard Webhooks signatures.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8913)
    parser.add_argument("--secret", default="", help="whsec_… to check signatures with")
    parser.add_argument("--credentials", default="", help="a JSON file whose webhook_secret is read at each delivery")
    args = parser.parse_args()
    receiver = WebhookReceiver(host=args.host, port=args.port, secret=args.secret, credentials=args.credentials)
    print(f"Webhook receiver on {receiver.url} (deliveries at http://{args.host}:{args.port}/)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        receiver.server.serve_forever()
