from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    # allauth's own app is labelled "Accounts" too; keep the admin index unambiguous.
    verbose_name = "Customers and API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        _email_verification_from_adapter()
        _language_from_account()


def _language_from_account() -> None:
    from allauth.account.signals import user_logged_in

    from .language import activate_account_language

    def _apply_language(sender: object, request: object, user: object, **kwargs: object) -> None:
        # The rest of the login request (its messages, the page it redirects to) is in
        # the account's language; UserLanguageMiddleware sets the cookie on the response.
        if request is not None:
            activate_account_language(request, user)  # type: ignore[arg-type]

    user_logged_in.connect(_apply_language, dispatch_uid="accounts.apply_language")


def _email_verification_from_adapter() -> None:
    """allauth reads its e-mail verification mode from a Django setting in a dozen places (the
    log-in stage, sign-up, enumeration prevention); the panel's mode is the Owner's choice in
    the admin. allauth's settings object answers EMAIL_VERIFICATION from the account adapter
    instead (AccountAdapter.email_verification_mode), so every one of those places follows a
    change at once, without a restart."""
    from allauth.account import app_settings
    from allauth.account.adapter import get_adapter

    current = app_settings._app_settings  # type: ignore[attr-defined]
    base = type(current)
    if getattr(base, "_panel_verification", False):
        return

    class PanelAccountSettings(base):  # type: ignore[misc, valid-type]
        _panel_verification = True

        @property
        def EMAIL_VERIFICATION(self):  # type: ignore[no-untyped-def]
            mode = getattr(get_adapter(), "email_verification_mode", None)
            if mode is None:
                return super().EMAIL_VERIFICATION
            return self.EmailVerificationMethod(mode())

    current.__class__ = PanelAccountSettings
