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
        # The lists need the width (orders, payments, services and providers fit 1280 px);
        # every page links home, where the app list is.
        admin.site.enable_nav_sidebar = False

        from django.db.models.signals import post_migrate

        # The roles' migration created them; this keeps them holding every permission added
        # since (the panel is the last app, so every app's permissions exist by then).
        post_migrate.connect(_roles_sync, sender=self, dispatch_uid="panel-roles-sync")


def _roles_sync(**kwargs: object) -> None:
    from django.contrib.auth.models import Group, Permission

    from .roles import roles_sync

    roles_sync(group_model=Group, permission_model=Permission)
