"""Indexes for the outbox's admin list: newest first, by kind, by recipient, by Message-ID."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_reply_to")]

    operations = [
        migrations.AddIndex(
            model_name="outgoingemail",
            index=models.Index(fields=["-created_at", "-id"], name="email_newest"),
        ),
        migrations.AddIndex(
            model_name="outgoingemail",
            index=models.Index(fields=["kind", "-created_at"], name="email_kind_newest"),
        ),
        migrations.AddIndex(model_name="outgoingemail", index=models.Index(fields=["to"], name="email_to")),
        migrations.AddIndex(
            model_name="outgoingemail", index=models.Index(fields=["message_id"], name="email_message_id")
        ),
    ]
