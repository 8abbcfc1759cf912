from django.apps import AppConfig


class PanelConfig(AppConfig):
    """The panel as customers and staff see it, assembled from the apps below it: the landing
    page, the navigation and balance on every page, the staff dashboard, sign-up with its
    referral, and the demo data."""

    name = "panel"
