"""Deposit limits move from the environment (WALLET_<GATEWAY>_MIN/MAX, WALLET_MANUAL_ENABLED)
to the gateway settings edited in the admin: a value set in the environment that differs from
the gateway's default is copied once into its row."""

import os
from decimal import Decimal, InvalidOperation

import django.core.validators
from django.db import migrations, models

DEFAULTS = {
    "manual": ("1", "10000"),
    "stripe": ("5", "5000"),
    "paypal": ("5", "5000"),
    "nowpayments": ("5", "5000"),
    "btcpay": ("5", "10000"),
}


def _env_decimal(name):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def copy_limits(apps, schema_editor):
    GatewaySetting = apps.get_model("wallets", "GatewaySetting")
    for code, (low, high) in DEFAULTS.items():
        minimum = _env_decimal(f"WALLET_{code.upper()}_MIN")
        maximum = _env_decimal(f"WALLET_{code.upper()}_MAX")
        changes = {}
        if minimum is not None and minimum > 0 and minimum != Decimal(low):
            changes["min_amount"] = minimum
        if maximum is not None and maximum > 0 and maximum != Decimal(high):
            changes["max_amount"] = maximum
        if code == "manual" and os.environ.get("WALLET_MANUAL_ENABLED", "").strip().lower() in {"false", "0", "no", "off"}:
            changes["enabled"] = False
        if not changes:
            continue
        row, _ = GatewaySetting.objects.get_or_create(code=code)
        for name, value in changes.items():
            if name == "enabled" or getattr(row, name) is None:
                setattr(row, name, value)
        if row.min_amount is not None and row.max_amount is not None and row.min_amount > row.max_amount:
            continue  # a contradiction in the environment is not copied; the defaults apply
        row.save()


class Migration(migrations.Migration):
    dependencies = [("wallets", "0004_payment_reversals_and_debt")]

    operations = [
        migrations.AlterField(
            model_name="gatewaysetting",
            name="max_amount",
            field=models.DecimalField(
                blank=True,
                decimal_places=5,
                help_text="Largest deposit. Empty: the gateway's default.",
                max_digits=18,
                null=True,
                validators=[django.core.validators.MinValueValidator(Decimal("0.01"))],
            ),
        ),
        migrations.AlterField(
            model_name="gatewaysetting",
            name="min_amount",
            field=models.DecimalField(
                blank=True,
                decimal_places=5,
                help_text="Smallest deposit. Empty: the gateway's default.",
                max_digits=18,
                null=True,
                validators=[django.core.validators.MinValueValidator(Decimal("0.01"))],
            ),
        ),
        migrations.RunPython(copy_limits, migrations.RunPython.noop),
    ]
