# ShadowResult and EvaluationSession move here from the model registry (see
# fitness.mlmodels.migrations.0002): the state takes over the existing tables, then the tables
# get this app's names. Rows are kept.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workouts", "0003_session_queued_at_attempts"),
        ("mlmodels", "0002_move_shadow_and_evaluation_sessions_to_workouts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ShadowResult",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("total_reps", models.PositiveIntegerField(blank=True, null=True)),
                        ("sets", models.JSONField(blank=True, default=list)),
                        ("production_version", models.CharField(blank=True, default="", max_length=64)),
                        ("production_total_reps", models.PositiveIntegerField(blank=True, null=True)),
                        ("production_sets", models.PositiveIntegerField(blank=True, null=True)),
                        ("agrees", models.BooleanField(default=False)),
                        ("error", models.TextField(blank=True, default="")),
                        ("created_at", models.DateTimeField(auto_now=True)),
                        (
                            "model_version",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="mlmodels.modelversion",
                            ),
                        ),
                        (
                            "session",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="shadow_results",
                                to="workouts.sensorsession",
                            ),
                        ),
                    ],
                    options={"ordering": ["-created_at", "-id"], "db_table": "mlmodels_shadowresult"},
                ),
                migrations.AddConstraint(
                    model_name="shadowresult",
                    constraint=models.UniqueConstraint(
                        fields=("session", "model_version"), name="unique_shadow_result_per_version"
                    ),
                ),
                migrations.CreateModel(
                    name="EvaluationSession",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("added_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "added_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "session",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="workouts.sensorsession",
                            ),
                        ),
                    ],
                    options={"ordering": ["added_at", "id"], "db_table": "mlmodels_evaluationsession"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="shadowresult", table=None),
        migrations.AlterModelTable(name="evaluationsession", table=None),
    ]
