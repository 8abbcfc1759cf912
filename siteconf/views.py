from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .selectors import site_logo


@require_GET
def logo(request: HttpRequest, version: str) -> HttpResponse:
    """The uploaded logo, with the type its bytes were checked to be (services.logo_check).
    The version in the URL is the image's hash, so browsers may keep it for a year."""
    data, content_type, current = site_logo()
    if not data or version != current:
        raise Http404
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Content-Disposition"] = 'inline; filename="logo"'
    return response
