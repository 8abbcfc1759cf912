from django.apps import AppConfig


class PanelConfig(AppConfig):
    """The panel as customers and staff see it, assembled from the apps below it: the landing
    page, the navigation and balance on every page, the staff dashboard, sign-up with its
    referral, and the demo data."""

    name = "panel"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib import admin

        # The admin carries the panel's name, not Django's.
        admin.site.site_header = f"{settings.PANEL_NAME} · staff"
        admin.site.site_title = f"{settings.PANEL_NAME} staff"
        admin.site.index_title = "Panel administration"
