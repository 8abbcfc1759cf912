"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live server.

The live server runs in this process, so the test reads e-mail from Django's locmem
outbox (`mail.outbox`), exactly what a person would receive.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 800}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("needs Debian's chromium")  # the e2e marker turns this into a failure in CI
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="e2e-chromium-")
    # Playwright's sync API keeps an event loop on this thread while the browser is open; the
    # tests' own ORM calls are still synchronous, so Django's async-safety guard must let them.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        # Playwright gives every launch a fresh profile; the folder below holds its crash dumps.
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=[*CHROMIUM_ARGS, f"--crash-dumps-dir={profile}"]
        )
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


class Visitor:
    """One person's browser context: navigation, form filling, screenshots."""

    def __init__(self, browser: Any, base_url: str, name: str) -> None:
        self.context = browser.new_context(viewport=DESKTOP, base_url=base_url)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.name = name
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def go(self, path: str) -> Any:
        return self.page.goto(path)

    def shoot(self, name: str) -> None:
        """Full-page screenshots at desktop and phone widths."""
        SCREENSHOTS.mkdir(exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def flag(self) -> Any:
        return self.page.evaluate("() => window.__pwned")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(chromium: Any, live_server: Any) -> Iterator[Any]:
    opened: list[Visitor] = []

    def open_(name: str) -> Visitor:
        visitor = Visitor(chromium, live_server.url, name)
        opened.append(visitor)
        return visitor

    yield open_
    for visitor in opened:
        visitor.close()
