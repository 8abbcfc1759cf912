from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's own app is labelled "Accounts" too; keep the admin index unambiguous.
    verbose_name = "Customers and API keys"
    default_auto_field = "django.db.models.BigAutoField"
