# The outbox moves from the incidents app with its table and every row: this migration
# takes the model over in Django's state only (the table is still incidents_outgoingemail),
# 0002 renames the table, and incidents/0008 drops the model from the incidents app's state.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('incidents', '0007_count_indexes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='OutgoingEmail',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('state', models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed')], default='queued', max_length=10)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('last_error', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('claimed_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('kind', models.CharField(max_length=30)),
                        ('to', models.EmailField(max_length=254)),
                        ('subject', models.CharField(max_length=255)),
                        ('body_text', models.TextField()),
                        ('body_html', models.TextField(blank=True)),
                    ],
                    options={
                        'db_table': 'incidents_outgoingemail',
                        'ordering': ('-created_at', '-id'),
                        'indexes': [models.Index(fields=['state', '-created_at'], name='email_state_newest')],
                    },
                ),
            ],
        ),
    ]
