from django.apps import AppConfig


class PanelConfig(AppConfig):
    """The panel as customers and staff see it, assembled from the apps below it: the landing
    page, the navigation and balance on every page, the staff dashboard, sign-up with its
    referral, and the demo data."""

    name = "panel"

    def ready(self) -> None:
        from django.contrib import admin
        from django.utils.functional import lazy

        from siteconf.selectors import site_settings

        # The admin carries the panel's name, not Django's: read on every page, so a new name
        # shows without a restart.
        admin.site.site_header = lazy(lambda: f"{site_settings().panel_name} · staff", str)()
        admin.site.site_title = lazy(lambda: f"{site_settings().panel_name} staff", str)()
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
