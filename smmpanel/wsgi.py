import os
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smmpanel.settings")
site = get_wsgi_application()

# The API endpoint answers keys, not sessions: no cookie is read or set, no CSRF token (it is
# exempt), no user, time zone, message or staff check. Its requests skip that middleware;
# the host check, HTTPS redirect and security headers stay.
API_PATHS = frozenset({"/api/v2", "/api/v2/"})
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "smmpanel.middleware.SecurityHeadersMiddleware",
]


class ApiHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE  # read once, here, at start-up
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


api = ApiHandler()


def application(environ: dict[str, Any], start_response: Any) -> Any:
    if environ.get("PATH_INFO") in API_PATHS:
        return api(environ, start_response)
    return site(environ, start_response)
