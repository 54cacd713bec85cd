"""The Responders group: its members see and work every incident (see permissions.py)."""

from django.db import migrations

RESPONDERS_GROUP = "Responders"  # frozen copy of incidents.models.RESPONDERS_GROUP


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=RESPONDERS_GROUP)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=RESPONDERS_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
