"""The Responders group: its members see and work every incident (see permissions.py)."""

from django.db import migrations

RESPONDERS_GROUP = "Responders"  # frozen copy of incidents.models.RESPONDERS_GROUP


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=RESPONDERS_GROUP)


def keep_group(apps, schema_editor):
    """Rolling back keeps the group and its members: a later forward migration finds them
    again (deleting it emptied the team of every responder)."""


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_group, keep_group)]
