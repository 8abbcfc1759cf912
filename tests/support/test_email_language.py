"""A staff answer is mailed in the customer's language, not in that of the staff member."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from django.core import mail
from django.utils import translation

from support import services
from tests import po

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs GNU gettext")


def test_the_answer_email_is_in_the_customers_language(
    customer: Any, staff: Any, settings: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> None:
    po.compile_catalogue(
        tmp_path,
        "ru",
        [
            po.Entry(msgid="Read the whole conversation and reply here:", msgstr="Вся переписка и ответ здесь:"),
            po.Entry(
                msgid="[%(panel)s] Reply to ticket #%(id)s: %(subject)s",
                msgstr="[%(panel)s] Ответ на обращение #%(id)s: %(subject)s",
                flags={"python-format"},
            ),
        ],
    )
    settings.LOCALE_PATHS = [tmp_path]
    customer.language = "ru"
    customer.save()
    ticket = services.ticket_open(user=customer, subject="Speed", body="Faster?", kind="other")
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):  # staff read English
        services.ticket_reply_staff(ticket=ticket, staff=staff, body="Done.", ticket_url="http://panel/t/1/")
    [email] = mail.outbox
    assert f"Ответ на обращение #{ticket.pk}: Speed" in email.subject
    assert "Вся переписка и ответ здесь:" in email.body and "Done." in email.body
