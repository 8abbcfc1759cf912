"""The 500 report mailed to staff never carries a customer's API key (or a password or
token), wherever the request carried it: query string, form body or JSON body."""

from __future__ import annotations

import json
import sys

import pytest
from django.core import mail
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class

from accounts.services import api_key_issue
from api import actions

pytestmark = pytest.mark.django_db

PASSWORD = "hunter2-correct-horse"
TOKEN = "tok_5f1c9a0b7e"


@pytest.fixture
def staff_mail(settings):
    settings.ADMINS = [("Staff", "staff@example.com")]
    settings.DEBUG = False
    mail.outbox.clear()
    return mail.outbox


@pytest.fixture
def failing_balance(monkeypatch):
    """The balance action fails with the request's parameters in its message and locals."""

    def boom(user, params, headers):
        raw = dict(params)
        raise RuntimeError(f"unexpected: {raw}")

    monkeypatch.setitem(actions.HANDLERS, "balance", boom)


def _everything(message) -> str:
    parts = [message.subject, message.body]
    parts += [content for content, _type in getattr(message, "alternatives", [])]
    return "\n".join(parts)


@pytest.mark.parametrize("how", ["query", "form", "json"])
def test_api_500_report_mailed_to_staff_has_no_key(client, customer, staff_mail, failing_balance, how):
    key = api_key_issue(user=customer)
    client.raise_request_exception = False
    params = {"key": key, "action": "balance", "password": PASSWORD, "token": TOKEN}
    if how == "query":
        response = client.get("/api/v2", params)
    elif how == "form":
        response = client.post(f"/api/v2?key={key}", params)
    else:
        response = client.post(f"/api/v2?key={key}", json.dumps(params), content_type="application/json")
    assert response.status_code == 500
    assert len(staff_mail) == 1
    report = _everything(staff_mail[0])
    assert "RuntimeError" in report and "balance" in report  # a useful report all the same
    for secret in (key, PASSWORD, TOKEN):
        assert secret not in report, how


@pytest.mark.parametrize("is_email", [True, False])
def test_rendered_reports_hide_keys_in_url_get_post_meta_and_frames(settings, is_email):
    settings.DEBUG = False
    secret = "SECRETKEY123456"
    request = RequestFactory().post(
        f"/api/v2?key={secret}&action=status",
        {"key": secret, "api_key": secret, "keywords": "visible-words", "password": PASSWORD},
        REQUEST_URI=f"/api/v2?key={secret}&action=status",
        RAW_URI=f"/api/v2?key={secret}&action=status",
    )

    def handler(request, key):
        params = {"key": key}
        raise ValueError(f"cannot handle {params} for {request.get_full_path()}")

    try:
        handler(request, secret)
    except ValueError:
        exc_info = sys.exc_info()
    reporter = get_exception_reporter_class(request)(request, *exc_info, is_email=is_email)
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert secret not in report
        assert PASSWORD not in report
        assert "visible-words" in report  # only sensitive names are hidden
        assert "action" in report


def test_scrub_pairs_hides_sensitive_names_only():
    from kernel.errors import scrub_pairs

    text = scrub_pairs("GET /api/v2?action=add&key=abc123&keywords=x&api_key=zz&password=p&monkey=m")
    assert "abc123" not in text and "zz" not in text and "=p&" not in text
    assert "keywords=x" in text and "monkey=m" in text and "action=add" in text


def test_client_faults_answered_400_are_not_mailed_to_staff(client, staff_mail, settings):
    """A wrong Host header or a form with too many fields is the client's fault: logged,
    answered 400, and no e-mail (anyone could otherwise fill the staff's inbox)."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.raise_request_exception = False
    assert client.get("/", HTTP_HOST="evil.example").status_code == 400
    fields = "&".join(f"f{i}=1" for i in range(50))
    response = client.post("/accounts/login/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert staff_mail == []
