"""The panel configuration starts from what the environment said before it moved to the admin
(PANEL_NAME, PANEL_CURRENCY, WALLET_AFFILIATE_PERCENT, WALLET_MANUAL_INSTRUCTIONS,
ACCOUNT_EMAIL_VERIFICATION); afterwards those variables are read no more."""

import os
import re
from decimal import Decimal, InvalidOperation

from django.db import migrations


def _env(name):
    return os.environ.get(name, "").strip()


def create_row(apps, schema_editor):
    SiteSettings = apps.get_model("siteconf", "SiteSettings")
    if SiteSettings.objects.filter(pk=1).exists():
        return
    values = {}
    if _env("PANEL_NAME"):
        values["panel_name"] = _env("PANEL_NAME")[:64]
    currency = _env("PANEL_CURRENCY").upper()
    if re.fullmatch(r"[A-Z]{3,5}", currency):
        values["base_currency"] = currency
    try:
        percent = Decimal(_env("WALLET_AFFILIATE_PERCENT") or "5")
        if Decimal(0) <= percent <= Decimal(100):
            values["affiliate_percent"] = percent
    except InvalidOperation:
        pass
    if _env("WALLET_MANUAL_INSTRUCTIONS"):
        values["manual_instructions"] = _env("WALLET_MANUAL_INSTRUCTIONS")
    # Before: mandatory in production unless set, optional while debugging.
    debug = _env("DJANGO_DEBUG").lower() in {"", "true", "1", "yes", "on"}
    mode = _env("ACCOUNT_EMAIL_VERIFICATION").lower() or ("optional" if debug else "mandatory")
    if mode in {"none", "optional", "mandatory"}:
        values["email_verification"] = mode
    SiteSettings.objects.create(pk=1, **values)


class Migration(migrations.Migration):
    dependencies = [("siteconf", "0001_initial")]

    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
