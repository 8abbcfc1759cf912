from django.apps import AppConfig


class SmmpanelConfig(AppConfig):
    name = "smmpanel"

    def ready(self) -> None:
        from django.db import models

        from .db import AnyOf, WholeNumberIExact

        models.IntegerField.register_lookup(AnyOf)
        models.IntegerField.register_lookup(WholeNumberIExact)
