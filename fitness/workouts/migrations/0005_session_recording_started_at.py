"""Recording time (issue 22): ``SensorSession.started_at`` now means when the recording began.

The old ``started_at`` (when a worker began counting) becomes ``processing_started_at``. Existing
sessions had no recording time: theirs is their upload time (``created_at``), which is what their
sets' ``performed_at`` was computed from, so sets stay consistent with their session.
"""

import django.utils.timezone
from django.db import migrations, models


def recording_time_from_upload(apps, schema_editor):
    SensorSession = apps.get_model("workouts", "SensorSession")
    SensorSession.objects.update(started_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("workouts", "0004_shadowresult_evaluationsession"),
    ]

    operations = [
        migrations.RenameField(model_name="sensorsession", old_name="started_at", new_name="processing_started_at"),
        migrations.AddField(
            model_name="sensorsession",
            name="started_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(recording_time_from_upload, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="sensorsession",
            name="started_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
