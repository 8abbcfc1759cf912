from django.apps import AppConfig


class CurrenciesConfig(AppConfig):
    """Display currencies and their rates against the panel's own currency."""

    name = "currencies"
    default_auto_field = "django.db.models.BigAutoField"
