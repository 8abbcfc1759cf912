from django.apps import AppConfig

from kernel import audit


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .audit import check_orders

        audit.register(check_orders)
