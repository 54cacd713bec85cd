# The outbox table takes this app's name, keeping every row; queued delivery tasks are
# pointed at the task's new home so that mail waiting at upgrade time still goes out.

from django.db import migrations

OLD_TASK = "incidents.tasks.send_email"
NEW_TASK = "notifications.tasks.send_email"


def point_tasks(apps, old, new):
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    DBTaskResult.objects.filter(task_path=old).update(task_path=new)


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0001_initial'),
        ('django_tasks_database', '0021_conditional_partial_index_ordering'),
    ]

    operations = [
        migrations.AlterModelTable(name='outgoingemail', table=None),
        migrations.RunPython(
            lambda apps, schema_editor: point_tasks(apps, OLD_TASK, NEW_TASK),
            lambda apps, schema_editor: point_tasks(apps, NEW_TASK, OLD_TASK),
        ),
    ]
