from django.apps import AppConfig


class SiteconfConfig(AppConfig):
    """The panel's settings that staff edit in the admin (name, logo, currency, sign-up…): one
    row, read through a cache by every app above the kernel."""

    name = "siteconf"
    verbose_name = "Panel configuration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_prerun
        from django.core.signals import request_started

        from . import checks  # noqa: F401  (registers the start-up note)
        from .selectors import site_settings_forget_local

        # One cache read per request or task: what this thread read is forgotten at the start
        # of the next one, so a change made by another process shows on its next request.
        request_started.connect(site_settings_forget_local, dispatch_uid="siteconf-forget")
        task_prerun.connect(site_settings_forget_local, dispatch_uid="siteconf-forget-task", weak=False)
