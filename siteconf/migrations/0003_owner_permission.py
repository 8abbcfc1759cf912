"""Only the Owner role may change the panel configuration (panel/roles.py: every role may
view it). The roles are kept current after every migrate; this grants it on this one too."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    from panel.roles import roles_sync

    app_config = apps.get_app_config("siteconf")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    roles_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("siteconf", "0002_initial_values_from_environment"),
        ("panel", "0001_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
