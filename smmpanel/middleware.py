from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Every asset is served from our own origin (no CDN), so the policy can be strict.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'"
)
# A view may let its forms go further: a deposit form's POST is answered with a redirect to
# the payment processor's page, and form-action covers the redirect too.
FORM_ACTION_ATTRIBUTE = "csp_form_action"


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        extra = getattr(response, FORM_ACTION_ATTRIBUTE, ())
        csp = CSP + "".join(f" {origin}" for origin in extra)
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
