"""The pages staff write and the service updates feed in a real browser: they fit 360 px, the
announcement banner closes and stays closed, and nothing staff or upstream wrote runs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from catalog.models import PriceChange, Service
from content.models import NewsPost, Page
from tests.e2e.conftest import DESKTOP, PHONE
from tests.factories import ServiceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def written(site_conf: Any) -> None:
    site_conf(support_email="help@boost.example", panel_name="Boost Shop")
    Page.objects.create(
        slug="terms",
        title="Terms of service",
        body='## Orders\n\nOrders start within **24 hours**. <img src=x onerror="window.__pwned=1">\n\n'
        "1. A refill is free for 30 days.\n2. Links must be public.\n\n[Contact us](javascript:window.__pwned=1)",
    )
    Page.objects.create(slug="faq", title="FAQ", body="### Is it safe?\n\nYes. We never ask for your password.")
    Page.objects.create(slug="contact", title="Contact", body="We answer tickets within a day.")
    NewsPost.objects.create(
        title="Maintenance on Sunday 02:00–03:00 UTC: orders queue and go out afterwards",
        body="Nothing is lost.",
        is_announcement=True,
    )
    now = timezone.now()
    long_name = "Instagram Followers [Refill 30D] [Max 50K] <script>window.__pwned=1</script> HQ Real-Looking Accounts"
    for index in range(4):
        service = ServiceFactory(name=f"{long_name} #{index}", price=Decimal("2.4"))
        Service.objects.filter(pk=service.pk).update(created_at=now - timedelta(hours=index))
        change = PriceChange.objects.create(
            service=service,
            old_price=Decimal("2.0"),
            new_price=Decimal("2.4"),
            old_cost=Decimal("1"),
            new_cost=Decimal("1.2"),
            status="applied",
            reason="sync",
        )
        PriceChange.objects.filter(pk=change.pk).update(created_at=now - timedelta(hours=index, minutes=30))
    ServiceFactory(name="TikTok Views (old)", is_enabled=False)


def test_content_pages_fit_a_phone_and_the_banner_stays_closed(visitors: Any, written: None) -> None:
    visitor = visitors("guest")
    page = visitor.page
    for path, name in (
        ("/terms/", "terms"),
        ("/faq/", "faq"),
        ("/contact/", "contact"),
        ("/news/", "news"),
        ("/updates/", "updates"),
    ):
        for size in (PHONE, DESKTOP):
            page.set_viewport_size(size)
            response = visitor.go(path)
            assert response.status == 200, path
            assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{path} scrolls sideways at {size['width']} px"
        visitor.shoot(f"content-{name}")
    assert page.locator("#updates [data-kind]").count() == 9
    assert "<script>" in page.locator("#updates").inner_text()  # shown as text, never run
    visitor.go("/contact/")
    assert page.locator("a[href='mailto:help@boost.example']").is_visible()
    # The banner, on every page until closed; closed, it stays closed.
    assert page.locator("#announcement").is_visible()
    page.locator("[data-announcement-close]").click()
    assert page.locator("#announcement").count() == 0
    visitor.go("/")
    assert page.locator("#announcement").count() == 0
    assert page.locator("footer a[href='/terms/']").is_visible()
    assert not visitor.flag() and not visitor.errors
