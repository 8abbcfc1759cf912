"""The panel's own address, from settings, for every link that leaves a request.

E-mails (password reset, address confirmation, ticket answers) and links handed to
outside parties are built from PANEL_BASE_URL, never from the request's Host header: a
forged Host would otherwise put an attacker's host into a password reset link.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


@dataclass(frozen=True)
class PanelSite:
    """What allauth's e-mail templates read as `current_site`."""

    domain: str
    name: str


def site_url(path: str = "/") -> str:
    """The absolute URL of a path on this panel (`path` as from `reverse`)."""
    base: str = settings.PANEL_BASE_URL
    return base.rstrip("/") + "/" + path.lstrip("/")


def site_rebase(url: str) -> str:
    """The same path, query and fragment on the panel's configured address."""
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return site_url(url)
    base_url: str = settings.PANEL_BASE_URL
    base = urlsplit(base_url)
    path = base.path.rstrip("/") + parts.path
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def panel_site(*, name: str) -> PanelSite:
    """The site as e-mails name it; `name` is the panel's configured name (siteconf)."""
    return PanelSite(domain=urlsplit(settings.PANEL_BASE_URL).netloc, name=name)
