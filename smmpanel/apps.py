from django.apps import AppConfig


class SmmpanelConfig(AppConfig):
    name = "smmpanel"

    def ready(self) -> None:
        from django.db import models

        from kernel.db import AnyOf, WholeNumberIExact

        from . import checks  # noqa: F401  (registers the deployment checks)

        models.IntegerField.register_lookup(AnyOf)
        models.IntegerField.register_lookup(WholeNumberIExact)
