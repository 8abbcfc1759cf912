"""Pages staff write (terms, FAQ, contact, news and the announcement banner) and the customers'
service updates feed from the catalogue's history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from catalog.models import PriceChange, Service
from content.markdown import render_markdown
from content.models import NewsPost, Page
from content.selectors import cursor_parse, service_updates
from tests.factories import ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- Markdown to safe HTML ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "<script>window.__pwned = 1</script>",
        '<img src="x" onerror="window.__pwned = 1">',
        "[click](javascript:window.__pwned=1)",
        '<a href="javascript:alert(1)">click</a>',
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="background:url(javascript:alert(1))" onclick="x()">styled</p>',
        '<svg><script>alert(1)</script></svg><math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    ],
)
def test_markdown_keeps_no_script_handler_or_javascript_url(text: str) -> None:
    html = render_markdown(text).lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "<iframe", "style=", "data:text", "<svg"):
        assert bad not in html, (bad, html)


def test_markdown_keeps_what_staff_write() -> None:
    html = render_markdown(
        "## Refills\n\n**Free** for 30 days, see [the FAQ](https://panel.example/faq/).\n\n- one\n- two"
    )
    assert "<h2>Refills</h2>" in html and "<strong>Free</strong>" in html and "<li>one</li>" in html
    assert 'href="https://panel.example/faq/"' in html and 'rel="noopener noreferrer nofollow"' in html


# --- the pages ------------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", ["terms", "faq", "contact"])
def test_each_page_shows_what_staff_wrote_sanitised(client: Client, slug: str) -> None:
    assert client.get(f"/{slug}/").status_code == 200  # not written yet: still a page
    Page.objects.create(slug=slug, title=f"About {slug}", body="Hello **there** <script>window.__pwned=1</script>")
    html = client.get(f"/{slug}/").content.decode()
    assert f"About {slug}" in html and "<strong>there</strong>" in html
    assert "__pwned" not in html
    assert client.post(f"/{slug}/").status_code == 405


def test_a_page_not_written_yet_says_so(client: Client) -> None:
    assert "has not been written yet" in client.get("/terms/").content.decode()


def test_news_lists_published_posts_newest_first_and_hides_drafts_and_future_ones(client: Client) -> None:
    now = timezone.now()
    old = NewsPost.objects.create(title="Old news", body="a", published_at=now - timedelta(days=2))
    new = NewsPost.objects.create(title="New <b>news</b>", body="b", published_at=now - timedelta(hours=1))
    draft = NewsPost.objects.create(title="Draft", body="c", is_published=False)
    future = NewsPost.objects.create(title="Tomorrow", body="d", published_at=now + timedelta(days=1))
    html = client.get("/news/").content.decode()
    assert html.index("New &lt;b&gt;news&lt;/b&gt;") < html.index("Old news")
    assert "Draft" not in html and "Tomorrow" not in html
    assert client.get(f"/news/{old.pk}/").status_code == 200 and client.get(f"/news/{new.pk}/").status_code == 200
    assert client.get(f"/news/{draft.pk}/").status_code == 404
    assert client.get(f"/news/{future.pk}/").status_code == 404


def test_the_announcement_is_on_every_page_until_closed_and_a_newer_one_shows(client: Client, customer: Any) -> None:
    first = NewsPost.objects.create(title="Maintenance tonight", is_announcement=True)
    NewsPost.objects.create(title="Plain news")
    for path in ("/", "/news/", "/terms/", "/accounts/login/", "/updates/"):
        html = client.get(path).content.decode()
        assert 'id="announcement"' in html and "Maintenance tonight" in html, path
    logged_in = Client()
    logged_in.force_login(customer)
    assert "Maintenance tonight" in logged_in.get("/orders/").content.decode()
    client.cookies["announcement_dismissed"] = str(first.pk)
    assert 'id="announcement"' not in client.get("/").content.decode()
    NewsPost.objects.create(title="New prices from Monday", is_announcement=True)
    html = client.get("/").content.decode()
    assert "New prices from Monday" in html and "Maintenance tonight" not in html


def test_the_footer_links_to_the_pages(client: Client) -> None:
    html = client.get("/").content.decode()
    for path in ("/news/", "/updates/", "/faq/", "/contact/", "/terms/"):
        assert f'href="{path}"' in html


# --- who may write them ------------------------------------------------------------------------------
def _staff(role: str) -> Client:
    user = UserFactory(username=role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_support_writes_news_but_only_the_owner_writes_the_pages(settings: Any) -> None:
    settings.STAFF_REQUIRE_MFA = False
    support, owner, finance = _staff("Support"), _staff("Owner"), _staff("Finance")
    news = {
        "title": "Hello",
        "body": "x",
        "published_at_0": "2026-01-01",
        "published_at_1": "10:00",
        "is_published": "on",
    }
    assert support.post("/admin/content/newspost/add/", news).status_code == 302
    assert finance.post("/admin/content/newspost/add/", news).status_code == 403
    page = {"slug": "terms", "title": "Terms", "body": "Be nice."}
    assert support.post("/admin/content/page/add/", page).status_code == 403
    assert finance.post("/admin/content/page/add/", page).status_code == 403
    assert not Page.objects.exists()
    assert owner.post("/admin/content/page/add/", page).status_code == 302
    assert Page.objects.get().body_html == "<p>Be nice.</p>"
    assert NewsPost.objects.count() == 1


# --- service updates ---------------------------------------------------------------------------------
def _at(service: Service, *, created: Any = None, updated: Any = None) -> None:
    Service.objects.filter(pk=service.pk).update(
        **{k: v for k, v in {"created_at": created, "updated_at": updated}.items() if v is not None}
    )


def _price_change(service: Service, old: str, new: str, when: Any, status: str = "applied") -> PriceChange:
    change = PriceChange.objects.create(
        service=service,
        old_price=Decimal(old),
        new_price=Decimal(new),
        old_cost=Decimal("1"),
        new_cost=Decimal("1"),
        status=status,
        reason="sync",
    )
    PriceChange.objects.filter(pk=change.pk).update(created_at=when)
    return change


def test_updates_show_new_services_price_changes_and_removals_newest_first(client: Client) -> None:
    now = timezone.now()
    added = ServiceFactory(name="Fresh <script>window.__pwned=1</script> Likes", price=Decimal("2.5"))
    _at(added, created=now - timedelta(hours=1))
    repriced = ServiceFactory(name="Repriced Views", price=Decimal("3"))
    _at(repriced, created=now - timedelta(days=30))
    _price_change(repriced, "2.000000", "3.000000", now - timedelta(hours=2))
    _price_change(repriced, "3.000000", "3.000000", now - timedelta(hours=3))  # no change: not shown
    _price_change(repriced, "3.000000", "9.000000", now - timedelta(hours=4), status="held")  # not applied
    gone = ServiceFactory(name="Gone Followers", is_enabled=False, disabled_reason="No active route to a provider")
    # (a service switched off is not listed as new, whenever it was added)
    _at(gone, created=now - timedelta(days=40), updated=now - timedelta(hours=3))
    response = client.get("/updates/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "__pwned=1</script>" not in html and "Fresh &lt;script&gt;" in html
    kinds = [line.split('data-kind="')[1].split('"')[0] for line in html.split("\n") if 'data-kind="' in line]
    assert kinds == ["new", "price", "removed", "new"]  # the last: the repriced service's creation
    assert html.index("Fresh") < html.index("Repriced Views") < html.index("Gone Followers")
    assert "Price up" in html and "9.00" not in html
    assert "No active route" not in html  # the internal reason stays internal


def test_updates_page_by_cursor_without_gaps_or_repeats(client: Client) -> None:
    now = timezone.now()
    services = [ServiceFactory(name=f"S{i:02d}") for i in range(7)]
    same_instant = now - timedelta(hours=1)
    for index, service in enumerate(services):
        _at(service, created=same_instant if index < 4 else now - timedelta(hours=2 + index))
        _price_change(service, "1.000000", "1.500000", same_instant)
    seen: list[tuple[str, int]] = []
    after = None
    for _ in range(20):
        items, last = service_updates(after=after, limit=3)
        seen += [(u.kind, u.ref) for u in items]
        if last is None:
            break
        after = cursor_parse(last.cursor)
    assert len(seen) == len(set(seen)) == 14
    assert client.get("/updates/?after=" + "garbage").status_code == 200
    assert client.get("/updates/?after=99999999999999999999_1_1").status_code == 200
