# The outbox now belongs to the notifications app (notifications/0001 and 0002 move the
# model and its table with every row); here it leaves the incidents app's state only.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0007_count_indexes'),
        ('notifications', '0002_outgoing_email_table'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name='OutgoingEmail')],
        ),
    ]
