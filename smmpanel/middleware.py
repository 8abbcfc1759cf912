from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Every asset is served from our own origin (no CDN), so the policy can be strict.
# form-action stays last: a page appends the origins its forms redirect to.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A page whose forms are answered by a redirect to a payment processor's checkout
        # names its origins: Chromium applies form-action to the redirect too.
        origins = getattr(response, "form_action_origins", ())
        response.headers.setdefault("Content-Security-Policy", " ".join((CSP, *origins)))
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class DebugNotFoundMiddleware:
    """Under DEBUG (`make run`) Django answers a missing page with its technical 404, which
    shows every URL pattern; this shows the panel's own 404 page instead, as production does.
    PANEL_DEBUG_TECHNICAL_404=true keeps Django's page for whoever debugs the URLs.

    It is the innermost middleware: Django has turned the Http404 into its page by the time
    the response reaches it, and the outer ones (security headers) still apply to ours."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404 and _is_technical_404(response):
            from django.shortcuts import render

            return render(request, "404.html", status=404)
        return response


def _is_technical_404(response: HttpResponse) -> bool:
    from django.conf import settings

    if not settings.DEBUG or getattr(settings, "PANEL_DEBUG_TECHNICAL_404", False):
        return False
    if not response.get("Content-Type", "").startswith("text/html") or getattr(response, "streaming", False):
        return False
    # Django's technical 404 page (django/views/templates/technical_404.html) says why it shows.
    return b"DEBUG = True" in response.content
