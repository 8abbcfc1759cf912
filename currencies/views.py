from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .services import CurrencyError, display_currency_choose


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next", "") or request.headers.get("Referer", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@require_POST
def choose(request: HttpRequest) -> HttpResponse:
    """The header's and the account page's currency form: works without JavaScript."""
    try:
        user = request.user if request.user.is_authenticated else None
        display_currency_choose(code=request.POST.get("currency", ""), user=user, session=request.session)  # type: ignore[arg-type]
    except CurrencyError as exc:
        messages.error(request, str(exc))
    return HttpResponseRedirect(_next(request))
