# Reply by e-mail: the record of every message `mail_ingest` read (processed once, by its key).

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0016_webhooks'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='InboundMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(editable=False, max_length=64, unique=True)),
                ('message_id', models.CharField(blank=True, max_length=255, verbose_name='Message-ID')),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('source', models.CharField(max_length=10)),
                ('sender', models.CharField(blank=True, max_length=254)),
                ('subject', models.CharField(blank=True, max_length=255)),
                ('status', models.CharField(choices=[('accepted', 'Accepted'), ('refused', 'Refused')], max_length=10)),
                ('reason', models.CharField(blank=True, choices=[('', '—'), ('no_token', 'Not addressed to a reply address'), ('bad_token', 'Forged or damaged reply address'), ('expired_token', 'Expired reply address'), ('unknown_sender', 'Not from the address the notification went to'), ('auto_reply', 'Automatic reply'), ('bounce', 'Bounce or delivery report'), ('closed', 'Incident closed'), ('not_allowed', 'Sender may not respond'), ('empty', 'No reply text'), ('invalid', 'Refused text or attachment'), ('unreadable', 'Unreadable message')], max_length=20)),
                ('detail', models.TextField(blank=True)),
                ('bounced_at', models.DateTimeField(blank=True, null=True)),
                ('incident', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='incidents.incident')),
                ('response', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='incidents.response')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ('-received_at', '-id'),
                'indexes': [models.Index(fields=['status', '-received_at'], name='inbound_status_newest'), models.Index(fields=['sender', 'bounced_at'], name='inbound_sender_bounced')],
            },
        ),
    ]
