"""E-mail addresses compared exactly: utf8mb4_bin on MySQL/MariaDB (see ExactEmailField),
and every stored address in its NFC spelling, as `normalize_email` now writes it."""

import unicodedata

from django.db import migrations

import accounts.models


def addresses_to_nfc(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    for user in User.objects.only("pk", "email").iterator():
        nfc = unicodedata.normalize("NFC", user.email)
        # A second account already holding the NFC spelling keeps both as they are.
        if nfc != user.email and not User.objects.filter(email=nfc).exists():
            User.objects.filter(pk=user.pk).update(email=nfc)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_notification_preferences"),
    ]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="email",
            field=accounts.models.ExactEmailField(
                error_messages={"unique": "An account with this e-mail address already exists."},
                max_length=254,
                unique=True,
                verbose_name="e-mail address",
            ),
        ),
        migrations.RunPython(addresses_to_nfc, migrations.RunPython.noop),
    ]
