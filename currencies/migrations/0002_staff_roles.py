"""Finance and Owner manage currencies and rates: every permission of this app.

panel/roles.py lists the app for both roles too, so the roles keep these after every migrate.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ("Owner", "Finance")


def grant(apps, schema_editor):
    config = apps.get_app_config("currencies")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="currencies"))
    for name in ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="currencies"))
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("currencies", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("panel", "0001_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
