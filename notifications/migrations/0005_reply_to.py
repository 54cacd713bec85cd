# The Reply-To an outbox message carries (empty: none; the caller decides).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0004_webhooks'),
    ]

    operations = [
        migrations.AddField(
            model_name='outgoingemail',
            name='reply_to',
            field=models.CharField(blank=True, editable=False, max_length=255),
        ),
    ]
