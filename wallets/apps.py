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

        from siteconf.services import money_moved_register

        from .selectors import ledger_has_entries

        # The base currency is fixed once the ledger holds anything.
        money_moved_register(ledger_has_entries)
