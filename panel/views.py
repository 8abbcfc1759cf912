from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from .selectors import landing_categories


def home(request: HttpRequest) -> HttpResponse:
    """Visitors get the landing page; a logged-in customer starts on the new-order page."""
    if request.user.is_authenticated:
        try:
            return redirect(reverse("orders:new"))
        except NoReverseMatch:
            pass  # the order pages are not installed: fall back to the landing page
    return render(request, "home.html", {"categories": landing_categories()})
