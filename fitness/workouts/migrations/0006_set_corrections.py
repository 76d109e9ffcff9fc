"""Corrections (issue 22): a set keeps what the counter said beside the user's count.

``counted_reps`` is what the counter said (null for a set the user added), ``origin`` whether
the counter or the user added the set, ``reviewed_at`` when the user last confirmed or corrected
it. Existing sets were never corrected: their ``counted_reps`` is their ``reps``.
"""

from django.db import migrations, models


def counted_reps_from_reps(apps, schema_editor):
    ExerciseSet = apps.get_model("workouts", "ExerciseSet")
    ExerciseSet.objects.update(counted_reps=models.F("reps"))


class Migration(migrations.Migration):
    dependencies = [
        ("workouts", "0005_session_recording_started_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="exerciseset",
            name="counted_reps",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="exerciseset",
            name="origin",
            field=models.CharField(
                choices=[("counter", "Found by the counter"), ("user", "Added by the user")],
                default="counter",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="exerciseset",
            name="reviewed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="exerciseset",
            name="method",
            field=models.CharField(
                choices=[("classifier", "Classifier"), ("peaks", "Peak detection"), ("manual", "Added by the user")],
                max_length=16,
            ),
        ),
        migrations.RunPython(counted_reps_from_reps, migrations.RunPython.noop, elidable=True),
    ]
