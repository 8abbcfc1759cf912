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
