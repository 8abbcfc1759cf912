from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.core import is_ratelimited

from accounts.models import ApiKey
from accounts.selectors import api_key_get_by_raw
from accounts.services import api_key_issue, api_key_revoke, api_key_touch
from accounts.utils import request_user
from kernel import protocol

from . import examples, spec
from .actions import HANDLERS
from .openapi import openapi_document

logger = logging.getLogger(__name__)
COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


def _reply(data: Any, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params=COMPACT)


def _flatten(value: Any) -> str | None:
    """A JSON value as the form-encoded text it stands for; None for what no form could
    carry (an object, or a list inside a list)."""
    if not isinstance(value, list):
        return _scalar(value)
    lines = []
    for item in value:
        text = _scalar(item)
        if text is None:
            return None
        lines.append(text)
    return "\n".join(lines)


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return None
    return str(value)


def _clean_text(text: str) -> bool:
    """False for text no field can hold: NUL (PostgreSQL refuses it) or a lone surrogate
    (it cannot be encoded, so it fails the first hash, log line or query that meets it)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_body(raw: bytes) -> dict[str, str] | None:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a body nested thousands deep ([[[[...]]]]) exhausts the parser.
        return None
    if not isinstance(body, dict):
        return None
    params: dict[str, str] = {}
    for key, value in body.items():
        text = _flatten(value)
        if text is None:
            return None
        params[str(key)] = text
    return params


def _params(request: HttpRequest) -> dict[str, str] | None:
    """Query string, then the body (form or JSON object) on top: the body wins.

    None (answered "Incorrect request") when the body cannot be read, is nested, or holds
    text no field can hold; nothing past this point sees such a value.
    """
    params = {k: request.GET.get(k, "") for k in request.GET}
    if request.method == "POST":
        content_type = request.content_type or ""
        if content_type == "application/json":
            body = _json_body(request.body)
            if body is None:
                return None
            params.update(body)
        else:
            params.update({k: request.POST.get(k, "") for k in request.POST})
    if not all(_clean_text(k) and _clean_text(v) for k, v in params.items()):
        return None
    if any("\ufffd" in k or "\ufffd" in v for k, v in params.items()) and not _utf8(request):
        return None
    return params


def _utf8(request: HttpRequest) -> bool:
    """Whether the query string and a form body are valid UTF-8. Django decodes them with
    replacement characters, so `%ED%A0%80` (an encoded surrogate) would arrive as U+FFFD;
    only checked when a U+FFFD shows up, so an ordinary request pays nothing."""
    raw = [request.META.get("QUERY_STRING", "").encode("latin-1", "replace")]
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        raw.append(request.body)
    try:
        for data in raw:
            unquote_to_bytes(data.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _client_ip(request: HttpRequest) -> str:
    # The same address the login throttle counts: X-Forwarded-For only through the
    # TRUSTED_PROXY_COUNT proxies the panel is told about.
    try:
        return get_account_adapter().get_client_ip(request)
    except PermissionDenied:
        return ""


def _limited(request: HttpRequest, *, group: str, key: str, rate: str) -> JsonResponse | None:
    try:
        limited = is_ratelimited(request, group=group, key=lambda _g, _r: key, rate=rate, increment=True)
    except Exception as exc:  # noqa: BLE001 - the shared cache is down (Redis restarting): serve, do not fail every call
        logger.warning("rate limit not checked: the cache is unreachable (%s: %s)", exc.__class__.__name__, exc)
        return None
    if limited:
        period = rate.split("/")[-1]
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period[-1:], 60)
        response = _reply({"error": "Too many requests, slow down"}, status=429)
        response["Retry-After"] = str(seconds)
        return response
    return None


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    """POST /api/v2 (and /api/v2/, no redirect): every application outcome is HTTP 200.

    The protocol speaks English only: the services' errors are translatable for the web
    pages, so the whole call runs with translation off, whatever the request's language
    cookie or Accept-Language say, and every error text is the protocol's own."""
    with translation.override(None):
        response = _endpoint(request)
    response["Content-Language"] = "en"
    return response


def _endpoint(request: HttpRequest) -> HttpResponse:
    if request.method not in {"GET", "POST"}:
        response = _reply({"error": protocol.ERR_INCORRECT_REQUEST}, status=405)
        response["Allow"] = "GET, POST"
        return response
    try:
        params = _params(request)
    except (SuspiciousOperation, MultiPartParserError):
        # Too big, too many fields, a broken multipart body: the protocol's error, not a 400.
        params = None
    if params is None:
        return _reply({"error": protocol.ERR_INCORRECT_REQUEST})

    raw_key = params.get("key", "")
    api_key = api_key_get_by_raw(raw_key=raw_key) if raw_key else None
    if api_key is None:
        limited = _limited(
            request, group="api-bad-key", key=_client_ip(request), rate=settings.API_RATE_LIMIT_INVALID_KEY
        )
        return limited or _reply({"error": protocol.ERR_INVALID_KEY})
    # Counted per customer, not per key: issuing a new key must not grant a fresh budget.
    limited = _limited(request, group="api-user", key=str(api_key.user_id), rate=settings.API_RATE_LIMIT_PER_KEY)
    if limited:
        return limited

    handler = HANDLERS.get(params.get("action", "").strip())
    if handler is None:
        return _reply({"error": protocol.ERR_INCORRECT_REQUEST})
    api_key_touch(api_key=api_key)
    return _reply(handler(api_key.user, params, request.headers))


@require_GET
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(server_url=request.build_absolute_uri("/")), json_dumps_params={"indent": 1})


def _api_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("api:endpoint"))


@login_required
def page(request: HttpRequest) -> HttpResponse:
    url = _api_url(request)
    actions = [
        {
            "action": action,
            "curl": examples.curl(action, url),
            "php": examples.php(action, url),
            "python": examples.python(action, url),
            "response": examples.response(action),
        }
        for action in spec.ACTIONS
    ]
    key = ApiKey.objects.filter(user=request_user(request)).first()
    new_key = request.session.pop("new_api_key", None)
    return render(
        request,
        "api/page.html",
        {
            "api_url": url,
            "key": key,
            "new_key": new_key,
            "actions": actions,
            "type_fields": spec.type_fields(),
            "errors": spec.ERRORS,
        },
    )


@login_required
@require_POST
def key_issue(request: HttpRequest) -> HttpResponse:
    had_key = ApiKey.objects.filter(user=request_user(request)).exists()
    # Shown once, on the next page view only; the database keeps only its hash.
    request.session["new_api_key"] = api_key_issue(user=request_user(request))
    messages.success(
        request,
        _("Your API key was regenerated: the old one no longer works.") if had_key else _("Your API key was created."),
    )
    return redirect("api:page")


@login_required
@require_POST
def key_revoke(request: HttpRequest) -> HttpResponse:
    api_key_revoke(user=request_user(request))
    messages.success(request, _("Your API key was revoked."))
    return redirect("api:page")
