from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fitness.workouts.models import Exercise, ExerciseSet, RecordingFormat, Repetition, SensorSession, Workout


@extend_schema_field(OpenApiTypes.INT)
class OwnedWorkoutField(serializers.PrimaryKeyRelatedField):
    """A workout id that must belong to the requesting user (others read as 'does not exist')."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return Workout.objects.none()
        return Workout.objects.filter(user=request.user)


class WorkoutSerializer(serializers.ModelSerializer):
    sessions = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Workout
        fields = ["id", "date", "notes", "created_at", "sessions"]
        read_only_fields = ["id", "created_at", "sessions"]


class RepetitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Repetition
        fields = ["start_s", "end_s"]


class ExerciseSetSerializer(serializers.ModelSerializer):
    repetitions = RepetitionSerializer(many=True, read_only=True)

    class Meta:
        model = ExerciseSet
        fields = ["exercise", "reps", "start_s", "end_s", "method", "repetitions"]


class ExerciseSetSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ExerciseSet
        fields = ["exercise", "reps", "start_s", "end_s", "method"]


_SESSION_FIELDS = [
    "id",
    "status",
    "error",
    "model_version",
    "total_reps",
    "sets",
    "format",
    "exercise",
    "client_id",
    "workout",
    "created_at",
    "started_at",
    "finished_at",
    "n_samples",
    "duration_s",
    "sample_rate_hz",
    "channels",
]


class BlankAsNullCharField(serializers.CharField):
    def to_representation(self, value):
        return value or None


class SessionSerializer(serializers.ModelSerializer):
    """A session with its sets and their repetitions."""

    model_version = BlankAsNullCharField(
        read_only=True, allow_null=True, help_text="the model version that counted; null for the peak counter"
    )
    exercise = serializers.CharField(source="exercise_hint", read_only=True, help_text="the client's exercise hint")
    channels = serializers.ListField(child=serializers.CharField(), read_only=True)
    sets = ExerciseSetSerializer(many=True, read_only=True)

    class Meta:
        model = SensorSession
        fields = _SESSION_FIELDS
        read_only_fields = _SESSION_FIELDS


class SessionListSerializer(SessionSerializer):
    """A session with its sets, without per-repetition detail."""

    sets = ExerciseSetSummarySerializer(many=True, read_only=True)


class SessionUploadSerializer(serializers.Serializer):
    """Multipart upload of one recording."""

    file = serializers.FileField(allow_empty_file=False)
    format = serializers.ChoiceField(choices=RecordingFormat.choices)
    exercise = serializers.ChoiceField(choices=Exercise.choices, required=False, allow_blank=True)
    client_id = serializers.UUIDField(required=False, allow_null=True)
    workout = OwnedWorkoutField(required=False, allow_null=True)
