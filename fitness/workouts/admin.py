from django.contrib import admin

from .models import ExerciseSet, Repetition, SensorSession, Workout


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
        "id", "created_at", "started_at", "finished_at", "n_samples", "duration_s", "sample_rate_hz", "channels",
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
