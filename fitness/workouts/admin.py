from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from fitness.mlmodels.services import RegistryError

from .models import EvaluationSession, ExerciseSet, Repetition, SensorSession, ShadowResult, Workout
from .services import evaluation_sessions


class SessionInline(admin.TabularInline):
    model = SensorSession
    fields = ["id", "status", "format", "total_reps", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Workout)
class WorkoutAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "date", "created_at"]
    list_filter = ["date"]
    search_fields = ["user__username", "notes"]
    raw_id_fields = ["user"]
    inlines = [SessionInline]


class ExerciseSetInline(admin.TabularInline):
    model = ExerciseSet
    fields = ["index", "exercise", "method", "reps", "start_s", "end_s", "performed_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(SensorSession)
class SensorSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "status", "format", "exercise_hint", "total_reps", "model_version", "created_at"]
    list_filter = ["status", "format", "exercise_hint", "model_version"]
    search_fields = ["id", "user__username", "client_id"]
    raw_id_fields = ["user", "workout"]
    readonly_fields = [
        "id", "created_at", "started_at", "processing_started_at", "finished_at", "n_samples", "duration_s",
        "sample_rate_hz", "channels",
    ]  # fmt: skip
    inlines = [ExerciseSetInline]


class RepetitionInline(admin.TabularInline):
    model = Repetition
    fields = ["index", "start_s", "end_s"]
    extra = 0


@admin.register(ExerciseSet)
class ExerciseSetAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "user", "exercise", "method", "reps", "performed_at"]
    list_filter = ["exercise", "method"]
    search_fields = ["session__id", "user__username"]
    raw_id_fields = ["session", "user"]
    inlines = [RepetitionInline]


@admin.register(ShadowResult)
class ShadowResultAdmin(admin.ModelAdmin):
    list_display = [
        "created_at", "model_version", "session", "agrees", "total_reps", "production_total_reps",
        "production_version",
    ]  # fmt: skip
    list_filter = ["agrees", "model_version"]
    search_fields = ["session__id", "model_version__version"]
    raw_id_fields = ["session", "model_version"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class EvaluationSessionForm(forms.ModelForm):
    class Meta:
        model = EvaluationSession
        fields = ["session"]

    def clean_session(self):
        session = self.cleaned_data["session"]
        try:
            evaluation_sessions.labelled_sessions([session.pk])
        except RegistryError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return session


@admin.register(EvaluationSession)
class EvaluationSessionAdmin(admin.ModelAdmin):
    """Labelled sessions evaluations use instead of the shipped manifest (when any are listed)."""

    form = EvaluationSessionForm
    list_display = ["session", "added_by", "added_at"]
    raw_id_fields = ["session"]

    def save_model(self, request: HttpRequest, obj: EvaluationSession, form, change: bool) -> None:
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)
