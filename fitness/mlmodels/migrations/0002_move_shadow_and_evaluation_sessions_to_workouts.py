# ShadowResult and EvaluationSession belong to the sessions they describe: they move to the
# workouts app (fitness.workouts.migrations.0004 takes over their tables), so that the registry
# depends on no other app. Only Django's state changes here; the tables stay.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mlmodels", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ShadowResult"),
                migrations.DeleteModel(name="EvaluationSession"),
            ],
            database_operations=[],
        ),
    ]
