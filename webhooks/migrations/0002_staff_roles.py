from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    """Give the roles of panel/roles.py the webhook permissions (Support: replay_event)."""
    from panel.roles import roles_sync

    # Permissions are created after migrations run; a fresh database needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("panel", "0001_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
