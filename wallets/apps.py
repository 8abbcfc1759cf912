from django.apps import AppConfig

from kernel import audit


class WalletsConfig(AppConfig):
    name = "wallets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the settings checks)
        from .audit import LEDGER_CHECKS

        for check in LEDGER_CHECKS:
            audit.register(check)
