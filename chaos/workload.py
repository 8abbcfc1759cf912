"""Customers of the chaos run: real HTTP clients of the panel, through the web pages and the API.

Each customer is a thread with its own `requests.Session`. Web customers log in through
allauth's page (CSRF cookie and token), place orders through the new-order form, look at
their order list and cancel now and then through the order page. API customers place
orders with `add`, follow them with `status` (100 ids at a time), cancel and refill.

Every placement has a link of its own, so an order, the request that placed it and the
provider's add counter meet on one key. A failed request (a 5xx, a dropped connection, a
timeout, a 429) is retried the way a careful client would: the same form token, the same
`Idempotency-Key`, so a retry can never place a second order.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = (5.0, 30.0)
MAX_TRIES = 6
TOKEN_RE = re.compile(r'name="token" value="([0-9a-f]+)"')
ALERT_RE = re.compile(r'id="order-error">(.*?)</div>', re.S)
ORDER_URL_RE = re.compile(r"/orders/(\d+)/$")


@dataclass
class Intent:
    """One order a customer wanted to place."""

    channel: str  # "web" or "api"
    username: str
    service_id: int
    link: str
    quantity: int
    order_id: int | None = None
    refused: str = ""  # the panel's answer when it refused the order
    gave_up: bool = False  # every try failed on the way (5xx, connection)
    tries: int = 0


@dataclass
class ServiceChoice:
    pk: int
    min: int
    max: int
    cancel: bool
    refill: bool


@dataclass
class Customer:
    username: str
    password: str
    api_key: str


class Stats:
    """Thread-safe counters and the moments of the failures clients saw."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.failures: list[tuple[float, str, str]] = []  # (time, channel, kind)
        self.refusals: Counter[str] = Counter()
        self.intents: list[Intent] = []

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def failure(self, channel: str, kind: str) -> None:
        with self._lock:
            self.counts[f"{channel}.{kind}"] += 1
            self.failures.append((self.clock(), channel, kind))

    def refusal(self, channel: str, text: str) -> None:
        with self._lock:
            self.counts[f"{channel}.refused"] += 1
            self.refusals[f"{channel}: {text[:80]}"] += 1

    def reason(self, label: str, text: str) -> None:
        """Why the panel said no to something other than a placement (cancel, refill)."""
        with self._lock:
            self.refusals[f"{label}: {text[:80]}"] += 1

    def intent(self, intent: Intent) -> None:
        with self._lock:
            self.intents.append(intent)


class _Failed(Exception):
    """A request that did not get an answer from the application (5xx, dropped, timed out)."""


class Client(threading.Thread):
    channel = ""

    def __init__(
        self,
        *,
        base_url: str,
        customer: Customer,
        services: list[ServiceChoice],
        stats: Stats,
        stop: threading.Event,
        run_id: str,
        seed: int,
        pause: tuple[float, float],
    ) -> None:
        super().__init__(name=f"{self.channel}-{customer.username}", daemon=True)
        self.base_url = base_url
        self.customer = customer
        self.services = services
        self.stats = stats
        self.stop_event = stop
        self.run_id = run_id
        self.rng = random.Random(seed)
        self.pause = pause
        self.session = requests.Session()
        self.serial = 0
        self.orders: list[tuple[int, ServiceChoice]] = []
        self.error: BaseException | None = None

    # --- plumbing ---------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; raises _Failed (after counting it) when the application did not answer."""
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        self.stats.count(f"{self.channel}.requests")
        try:
            response = self.session.request(method, self.base_url + path, **kwargs)
        except requests.Timeout as exc:
            self.stats.failure(self.channel, "timeout")
            raise _Failed("timeout") from exc
        except requests.ConnectionError as exc:
            self.stats.failure(self.channel, "connection_error")
            raise _Failed("connection error") from exc
        if response.status_code >= 500:
            self.stats.failure(self.channel, "5xx")
            raise _Failed(f"HTTP {response.status_code}")
        if response.status_code == 429:
            self.stats.failure(self.channel, "429")
            wait = response.headers.get("Retry-After", "1")
            self.nap(min(float(wait) if wait.isdigit() else 1.0, 5.0))
            raise _Failed("HTTP 429")
        return response

    def nap(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    def backoff(self, attempt: int) -> None:
        self.nap(min(0.5 * 2**attempt, 5.0) * (0.5 + self.rng.random()))

    def new_intent(self) -> Intent:
        self.serial += 1
        service = self.rng.choice(self.services)
        top = min(service.max, max(service.min * 5, 1000), 5000)
        quantity = self.rng.randint(service.min, max(service.min, top))
        link = f"https://chaos.example/{self.run_id}/{self.channel}/{self.customer.username}/{self.serial}"
        return Intent(self.channel, self.customer.username, service.pk, link, quantity)

    def service(self, pk: int) -> ServiceChoice:
        return next(s for s in self.services if s.pk == pk)

    def run(self) -> None:
        try:
            self.start_session()
            while not self.stop_event.is_set():
                try:
                    self.step()
                except _Failed:
                    self.backoff(1)
                self.nap(self.rng.uniform(*self.pause))
        except BaseException as exc:  # noqa: BLE001 - reported by the orchestrator, never silent
            self.error = exc

    def start_session(self) -> None:
        pass

    def step(self) -> None:
        raise NotImplementedError


class WebCustomer(Client):
    channel = "web"

    def start_session(self) -> None:
        for attempt in range(20):
            if self.stop_event.is_set():
                return
            try:
                if self.login():
                    return
            except _Failed:
                pass
            self.backoff(attempt)
        raise RuntimeError(f"{self.customer.username} could not log in")

    def login(self) -> bool:
        self.session.cookies.clear()
        self.request("GET", "/accounts/login/")
        response = self.request(
            "POST",
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": self.session.cookies.get("csrftoken", ""),
                "login": self.customer.username,
                "password": self.customer.password,
            },
        )
        ok = response.status_code == 302 and "/accounts/login" not in response.headers.get("Location", "")
        self.stats.count("web.logins" if ok else "web.login_refused")
        return ok

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.04:
            self.start_session()  # the customer comes back in a new browser: logs in again
        elif roll < 0.12:
            self.request("GET", "/orders/")
            self.stats.count("web.list_pages")
        elif roll < 0.2 and self.orders:
            self.cancel()
        else:
            self.place()

    def _logged_out(self, response: requests.Response) -> bool:
        if response.status_code == 302 and "/accounts/login" in response.headers.get("Location", ""):
            self.stats.count("web.relogins")
            self.login()
            return True
        return False

    def place(self) -> None:
        intent = self.new_intent()
        self.stats.intent(intent)
        token = ""
        for attempt in range(MAX_TRIES):
            if self.stop_event.is_set() and attempt:
                break
            intent.tries += 1
            try:
                if not token:  # the page, as a browser would load it
                    page = self.request("GET", "/orders/new/")
                    if self._logged_out(page):
                        continue
                    found = TOKEN_RE.search(page.text)
                    if found is None:
                        raise _Failed("no form token on the page")
                    token = found.group(1)
                # A retry resubmits the same form (same token): one order at most.
                response = self.request(
                    "POST",
                    "/orders/new/",
                    data={
                        "csrfmiddlewaretoken": self.session.cookies.get("csrftoken", ""),
                        "token": token,
                        "service": str(intent.service_id),
                        "link": intent.link,
                        "quantity": str(intent.quantity),
                    },
                )
            except _Failed:
                self.backoff(attempt)
                continue
            if self._logged_out(response):
                continue
            location = response.headers.get("Location", "")
            match = ORDER_URL_RE.search(location) if response.status_code == 302 else None
            if match:
                intent.order_id = int(match.group(1))
                self.stats.count("web.placed")
                self.orders.append((intent.order_id, self.service(intent.service_id)))
                return
            if response.status_code == 200:
                alert = ALERT_RE.search(response.text)
                intent.refused = re.sub(r"<[^>]+>|\s+", " ", alert.group(1)).strip() if alert else "form error"
                self.stats.refusal("web", intent.refused)
                return
            intent.refused = f"HTTP {response.status_code}"
            self.stats.refusal("web", intent.refused)
            return
        intent.gave_up = True
        self.stats.count("web.gave_up")

    def cancel(self) -> None:
        candidates = [pk for pk, s in self.orders if s.cancel]
        if not candidates:
            return
        pk = self.rng.choice(candidates[-30:])
        response = self.request(
            "POST",
            f"/orders/{pk}/cancel/",
            data={"csrfmiddlewaretoken": self.session.cookies.get("csrftoken", "")},
        )
        self.stats.count("web.cancels" if response.status_code == 302 else "web.cancel_failed")


class ApiCustomer(Client):
    channel = "api"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.completed: list[int] = []
        self.refills: list[int] = []

    def call(self, action: str, **params: Any) -> Any:
        response = self.request("POST", "/api/v2", data={"key": self.customer.api_key, "action": action, **params})
        if response.status_code != 200:
            self.stats.refusal("api", f"HTTP {response.status_code}")
            return None
        try:
            return response.json()
        except ValueError:
            self.stats.refusal("api", "not JSON")
            return None

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.15 and self.orders:
            self.status()
        elif roll < 0.23 and self.orders:
            self.cancel()
        elif roll < 0.28 and self.completed:
            self.refill()
        else:
            self.add()

    def add(self) -> None:
        intent = self.new_intent()
        self.stats.intent(intent)
        key = uuid.uuid4().hex
        for attempt in range(MAX_TRIES):
            if self.stop_event.is_set() and attempt:
                break
            intent.tries += 1
            try:
                response = self.request(
                    "POST",
                    "/api/v2",
                    data={
                        "key": self.customer.api_key,
                        "action": "add",
                        "service": str(intent.service_id),
                        "link": intent.link,
                        "quantity": str(intent.quantity),
                    },
                    headers={"Idempotency-Key": key},
                )
            except _Failed:
                self.backoff(attempt)
                continue
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("order"), int):
                intent.order_id = body["order"]
                self.stats.count("api.placed")
                self.orders.append((intent.order_id, self.service(intent.service_id)))
                return
            intent.refused = str(body.get("error")) if isinstance(body, dict) else f"HTTP {response.status_code}"
            self.stats.refusal("api", intent.refused)
            return
        intent.gave_up = True
        self.stats.count("api.gave_up")

    def status(self) -> None:
        ids = [pk for pk, _ in self.orders[-100:]]
        body = self.call("status", orders=",".join(map(str, ids)))
        if not isinstance(body, dict):
            return
        self.stats.count("api.status_calls")
        services = dict(self.orders)
        for raw, info in body.items():
            pk = int(raw)
            done = isinstance(info, dict) and info.get("status") == "Completed" and services[pk].refill
            if done and pk not in self.completed and pk not in self.refills:
                self.completed.append(pk)

    def cancel(self) -> None:
        candidates = [pk for pk, s in self.orders if s.cancel]
        if not candidates:
            return
        body = self.call("cancel", orders=str(self.rng.choice(candidates[-30:])))
        if isinstance(body, list) and body and isinstance(body[0], dict):
            answer = body[0].get("cancel")
            self.stats.count("api.cancels" if answer == 1 else "api.cancel_refused")
            if isinstance(answer, dict):
                self.stats.reason("api cancel", str(answer.get("error")))

    def refill(self) -> None:
        pk = self.completed.pop(0)
        self.refills.append(pk)
        body = self.call("refill", order=str(pk))
        if isinstance(body, dict) and "refill" in body:
            self.stats.count("api.refills")
            self.call("refill_status", refill=str(body["refill"]))
        else:
            self.stats.count("api.refill_refused")
            self.stats.reason("api refill", str(body.get("error")) if isinstance(body, dict) else "no answer")


@dataclass
class Workload:
    base_url: str
    customers: list[tuple[str, Customer]]  # (channel, customer)
    services: list[ServiceChoice]
    stats: Stats
    run_id: str
    seed: int
    pause: tuple[float, float] = (0.4, 1.2)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[Client] = field(default_factory=list)

    def start(self) -> None:
        for n, (channel, customer) in enumerate(self.customers):
            cls = WebCustomer if channel == "web" else ApiCustomer
            client = cls(
                base_url=self.base_url,
                customer=customer,
                services=self.services,
                stats=self.stats,
                stop=self.stop,
                run_id=self.run_id,
                seed=self.seed * 1000 + n,
                pause=self.pause,
            )
            client.start()
            self.threads.append(client)

    def finish(self, timeout: float = 45.0) -> list[str]:
        """Stop and wait for every customer; the errors of those that crashed."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        problems = [f"{t.name} is still running" for t in self.threads if t.is_alive()]
        problems += [f"{t.name} crashed: {t.error!r}" for t in self.threads if t.error is not None]
        return problems
