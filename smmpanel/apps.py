from django.apps import AppConfig


class SmmpanelConfig(AppConfig):
    name = "smmpanel"

    def ready(self) -> None:
        from django.db import models

        from . import checks  # noqa: F401  (registers the deployment checks)
        from .db import AnyOf, WholeNumberIExact

        models.IntegerField.register_lookup(AnyOf)
        models.IntegerField.register_lookup(WholeNumberIExact)
