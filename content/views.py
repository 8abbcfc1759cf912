from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from kernel.numbers import int_or_none

from .models import Page
from .selectors import cursor_parse, news_get, news_list, page_get, service_updates

NEWS_PER_PAGE = 10
UPDATES_PER_PAGE = 25


def _page(request: HttpRequest, slug: str) -> HttpResponse:
    return render(
        request,
        "content/page.html",
        {"page": page_get(slug=slug), "slug": slug, "default_title": Page.Slug(slug).label},
    )


@require_GET
def terms(request: HttpRequest) -> HttpResponse:
    return _page(request, Page.Slug.TERMS)


@require_GET
def faq(request: HttpRequest) -> HttpResponse:
    return _page(request, Page.Slug.FAQ)


@require_GET
def contact(request: HttpRequest) -> HttpResponse:
    return _page(request, Page.Slug.CONTACT)


@require_GET
def news(request: HttpRequest) -> HttpResponse:
    paginator = Paginator(news_list(), NEWS_PER_PAGE)
    posts = paginator.get_page(int_or_none(request.GET.get("page"), min=1) or 1)
    return render(request, "content/news.html", {"posts": posts})


@require_GET
def news_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "content/news_detail.html", {"post": news_get(pk=pk)})


@require_GET
def updates(request: HttpRequest) -> HttpResponse:
    after = cursor_parse(request.GET.get("after"))
    items, last = service_updates(after=after, limit=UPDATES_PER_PAGE)
    return render(
        request,
        "content/updates.html",
        {"updates": items, "next_cursor": last.cursor if last else None, "is_first_page": after is None},
    )
