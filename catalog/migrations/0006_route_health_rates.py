"""Route health by failure rate over the window (sends and deliveries), not by consecutive
failures. The old threshold of consecutive failures becomes the least number of attempts
before a route is judged (so that many failures in a row still demote it); an open streak
becomes an open window with as many attempts as failures; a demoted route recovers as
before, when a probe is accepted."""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import F


def streaks_to_windows(apps, schema_editor):
    Route = apps.get_model("catalog", "Route")
    PanelSettings = apps.get_model("catalog", "PanelSettings")
    row = PanelSettings.objects.order_by("pk").first()
    window = timedelta(minutes=row.route_failure_window_minutes if row is not None else 10)
    for route in Route.objects.filter(send_failures__gt=0, fail_streak_since__isnull=False):
        Route.objects.filter(pk=route.pk).update(
            send_attempts=F("send_failures"), send_until=route.fail_streak_since + window
        )
    Route.objects.filter(send_failures__gt=0, fail_streak_since__isnull=True).update(send_failures=0)
    Route.objects.filter(demoted_at__isnull=False).update(demoted_for="sending")


def windows_to_streaks(apps, schema_editor):
    Route = apps.get_model("catalog", "Route")
    Route.objects.filter(send_until__isnull=False).update(fail_streak_since=F("send_until"))


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_merge_20261129_2201"),
    ]

    operations = [
        migrations.RenameField(model_name="panelsettings", old_name="route_failures_to_demote", new_name="route_min_attempts"),
        migrations.RenameField(model_name="route", old_name="fail_streak", new_name="send_failures"),
        migrations.AddField(model_name="route", name="send_attempts", field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name="route", name="send_until", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="route", name="delivery_outcomes", field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name="route", name="delivery_failures", field=models.PositiveIntegerField(default=0)),
        migrations.AddField(model_name="route", name="delivery_until", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="route", name="demoted_for", field=models.CharField(blank=True, max_length=16)),
        migrations.RunPython(streaks_to_windows, windows_to_streaks),
        migrations.RemoveField(model_name="route", name="fail_streak_since"),
    ]
