from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's own app is labelled "Accounts" too; keep the admin index unambiguous.
    verbose_name = "Customers and API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import user_logged_in

        from .language import activate_account_language

        def _apply_language(sender: object, request: object, user: object, **kwargs: object) -> None:
            # The rest of the login request (its messages, the page it redirects to) is in
            # the account's language; UserLanguageMiddleware sets the cookie on the response.
            if request is not None:
                activate_account_language(request, user)  # type: ignore[arg-type]

        user_logged_in.connect(_apply_language, dispatch_uid="accounts.apply_language")
