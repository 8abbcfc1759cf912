from django.apps import AppConfig


class ContentConfig(AppConfig):
    """Pages staff write (terms, FAQ, contact, news and announcements) and the customers'
    feed of service updates built from the catalogue's history."""

    name = "content"
    verbose_name = "Pages and news"
    default_auto_field = "django.db.models.BigAutoField"
