import math
from datetime import timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fitness.workouts.models import (
    UPLOAD_EXEMPLAR_CHOICES,
    ExemplarChoice,
    ExerciseSet,
    RecordingFormat,
    Repetition,
    SensorSession,
    Workout,
)
from fitness.workouts.services.corrections import MAX_SET_REPS
from fitness.workouts.services.recording_time import STARTED_AT_RULE, started_at_problem
from inference import catalog

_SET_STARTED_AT_HELP = "when the set began: the session's started_at + start_s (UTC)"


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


#: What a set says about the user's corrections (see fitness/workouts/services/corrections.py).
CORRECTION_FIELDS = ["counted_reps", "corrected", "origin", "reviewed_at"]


class _CorrectionFields(serializers.Serializer):
    counted_reps = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="what the counter said (a correction never changes it); null: added by the user",
    )
    corrected = serializers.BooleanField(
        read_only=True, help_text="the user changed reps (0: a phantom set) or added the set; reps is the user's count"
    )
    origin = serializers.ChoiceField(
        choices=ExerciseSet.Origin.choices, read_only=True, help_text="`counter`, or `user` for a set the user added"
    )
    reviewed_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="when the user last confirmed (PATCH with the same reps) or corrected the set; null: never",
    )


_EXEMPLAR_SET_HELP = (
    "the id of the reviewed set the learned counter was given as the exemplar of this movement when it counted "
    "this set (method `learned`); null: no exemplar was used"
)


class _ExemplarField(serializers.Serializer):
    exemplar_set = serializers.IntegerField(
        source="exemplar_set_id", read_only=True, allow_null=True, help_text=_EXEMPLAR_SET_HELP
    )


_SET_SUMMARY_FIELDS = [
    "id",
    "exercise",
    "reps",
    "start_s",
    "end_s",
    "started_at",
    "method",
    *CORRECTION_FIELDS,
    "exemplar_set",
]


class ExerciseSetSerializer(_ExemplarField, _CorrectionFields, serializers.ModelSerializer):
    repetitions = RepetitionSerializer(many=True, read_only=True)
    started_at = serializers.DateTimeField(source="performed_at", read_only=True, help_text=_SET_STARTED_AT_HELP)

    class Meta:
        model = ExerciseSet
        fields = [*_SET_SUMMARY_FIELDS, "repetitions"]


class ExerciseSetSummarySerializer(_ExemplarField, _CorrectionFields, serializers.ModelSerializer):
    started_at = serializers.DateTimeField(source="performed_at", read_only=True, help_text=_SET_STARTED_AT_HELP)

    class Meta:
        model = ExerciseSet
        fields = _SET_SUMMARY_FIELDS


_SESSION_FIELDS = [
    "id",
    "status",
    "error",
    "model_version",
    "total_reps",
    "reviewed_sets",
    "sets",
    "format",
    "exercise",
    "client_id",
    "workout",
    "exemplar",
    "exemplar_set",
    "created_at",
    "started_at",
    "processing_started_at",
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
    total_reps = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="the sum of the sets' reps (users' corrections included)"
    )
    reviewed_sets = serializers.SerializerMethodField(
        help_text="sets the user confirmed, corrected or added: a re-count keeps them (and their reps)"
    )
    started_at = serializers.DateTimeField(
        read_only=True,
        help_text="when the recording began (UTC): the upload's started_at, else the recording's own clock, "
        "else the upload time",
    )
    processing_started_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="when a worker last began counting it"
    )
    exemplar = serializers.ChoiceField(
        choices=ExemplarChoice.choices,
        read_only=True,
        help_text="how the learned counter's exemplar is chosen: `auto` (the user's newest reviewed set of the "
        "exercise), `none`, or `set` (the set in exemplar_set, named at upload or by a re-count); the sets say "
        "which one they were counted with",
    )
    exemplar_set = serializers.IntegerField(
        source="exemplar_set_id",
        read_only=True,
        allow_null=True,
        help_text="the set named as the exemplar (exemplar `set`); null otherwise, or once that set is deleted",
    )

    class Meta:
        model = SensorSession
        fields = _SESSION_FIELDS
        read_only_fields = _SESSION_FIELDS

    def get_reviewed_sets(self, obj: SensorSession) -> int:
        return sum(1 for s in obj.sets.all() if s.reviewed_at is not None)  # the prefetched sets


class SessionListSerializer(SessionSerializer):
    """A session with its sets, without per-repetition detail."""

    sets = ExerciseSetSummarySerializer(many=True, read_only=True)


class CatalogExerciseField(serializers.CharField):
    """An exercise id of the catalog (:mod:`inference.catalog`); the refusal says where the list is."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data)
        if value and not catalog.is_known(value):
            raise serializers.ValidationError(catalog.unknown_exercise_message(value), code="invalid_choice")
        return value


class RecordingStartField(serializers.DateTimeField):
    """An ISO 8601 date-time with a UTC offset within the bounds of ``started_at_problem``
    (DRF's own field would read a naive time in the server's zone)."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is None:
                self.fail("invalid", format="ISO 8601 with a UTC offset, e.g. 2024-05-01T18:30:00+02:00")
            problem = started_at_problem(parsed, now=timezone.now())
            if problem:
                raise serializers.ValidationError(problem, code="invalid")
        return super().to_internal_value(value)


class SessionUploadSerializer(serializers.Serializer):
    """Multipart upload of one recording."""

    file = serializers.FileField(allow_empty_file=False)
    format = serializers.ChoiceField(choices=RecordingFormat.choices)
    exercise = CatalogExerciseField(
        required=False,
        allow_blank=True,
        help_text="the exercise done, if known: a catalog id (GET /api/v1/exercises/) or `unknown`; blank: no hint",
    )
    client_id = serializers.UUIDField(required=False, allow_null=True)
    workout = OwnedWorkoutField(required=False, allow_null=True)
    started_at = RecordingStartField(
        required=False,
        allow_null=True,
        help_text=(
            f"when the recording began: {STARTED_AT_RULE}. Without it: the file's own clock (Exermote "
            "timeStampSaved, read in the profile time zone; CaRa Unix ms; the canonical start_time), else the "
            "upload time"
        ),
    )
    exemplar = serializers.ChoiceField(
        choices=UPLOAD_EXEMPLAR_CHOICES,
        default=ExemplarChoice.AUTO,
        help_text="`auto`: the learned counter is shown the user's newest reviewed set of `exercise` (none "
        "without an exercise or with `unknown`); `none`: no exemplar",
    )
    exemplar_set = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="the id of one of the user's reviewed (confirmed, corrected or added) sets of `exercise` "
        "(no exercise: `unknown`) with 1 to 500 reps over 1 to 900 s: the learned counter counts this "
        "recording as that set shows the movement. Not with exemplar `none`",
    )

    def validate(self, attrs: dict) -> dict:
        if attrs.get("exemplar_set") is not None and attrs.get("exemplar") == ExemplarChoice.NONE:
            raise serializers.ValidationError(
                {"exemplar": ["`none` asks for no exemplar: leave out exemplar_set, or leave out exemplar"]}
            )
        return attrs


# --- History (sync) -----------------------------------------------------------------

_SEGMENT_TYPE_HELP = (
    "Health Connect ExerciseSegment.segmentType (Jetpack EXERCISE_SEGMENT_TYPE_* value) of the exercise, from "
    "the catalog (GET /api/v1/exercises/); 0 = unknown, 38 = other workout"
)


class _ExerciseSegmentFields(serializers.Serializer):
    """The fields of a Health Connect ``ExerciseSegment``: start/end instants, segment type, repetitions."""

    start_time = serializers.SerializerMethodField(help_text="ExerciseSegment.startTime (UTC)")
    end_time = serializers.SerializerMethodField(help_text="ExerciseSegment.endTime (UTC)")
    segment_type = serializers.SerializerMethodField(help_text=_SEGMENT_TYPE_HELP)

    @staticmethod
    def _exercise_set(obj) -> ExerciseSet:
        raise NotImplementedError

    def _offsets(self, obj) -> tuple[float, float]:
        """Start and end of ``obj`` in seconds from its set's start."""
        raise NotImplementedError

    def _at(self, obj, offset_s: float):
        return serializers.DateTimeField().to_representation(
            self._exercise_set(obj).performed_at + timedelta(seconds=offset_s)
        )

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_start_time(self, obj) -> str:
        return self._at(obj, self._offsets(obj)[0])

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_end_time(self, obj) -> str:
        return self._at(obj, self._offsets(obj)[1])

    def get_segment_type(self, obj) -> int:
        exercise = self._exercise_set(obj).exercise
        return catalog.health_connect_type(exercise)


class SetHistorySerializer(_ExemplarField, _CorrectionFields, _ExerciseSegmentFields, serializers.ModelSerializer):
    """One counted set; ``start_time``/``end_time``/``segment_type``/``repetitions`` map onto an ExerciseSegment."""

    session = serializers.UUIDField(source="session_id", read_only=True)
    repetitions = serializers.IntegerField(source="reps", read_only=True, help_text="ExerciseSegment.repetitions")
    started_at = serializers.DateTimeField(source="performed_at", read_only=True, help_text=_SET_STARTED_AT_HELP)
    performed_at = serializers.DateTimeField(read_only=True, help_text="the same instant as started_at (older name)")

    class Meta:
        model = ExerciseSet
        fields = [
            "id",
            "session",
            "index",
            "exercise",
            "method",
            "reps",
            "start_s",
            "end_s",
            "started_at",
            "performed_at",
            "updated_at",
            "start_time",
            "end_time",
            "segment_type",
            "repetitions",
            *CORRECTION_FIELDS,
            "exemplar_set",
        ]
        read_only_fields = fields

    @staticmethod
    def _exercise_set(obj: ExerciseSet) -> ExerciseSet:
        return obj

    def _offsets(self, obj: ExerciseSet) -> tuple[float, float]:
        return 0.0, obj.end_s - obj.start_s


class RepetitionHistorySerializer(_ExerciseSegmentFields, serializers.ModelSerializer):
    """One repetition as a one-repetition ExerciseSegment; ``start_s``/``end_s`` are from the session start."""

    session = serializers.UUIDField(source="set.session_id", read_only=True)
    exercise = serializers.CharField(source="set.exercise", read_only=True)
    repetitions = serializers.SerializerMethodField(help_text="ExerciseSegment.repetitions (always 1)")

    class Meta:
        model = Repetition
        fields = [
            "id",
            "set",
            "session",
            "index",
            "exercise",
            "start_s",
            "end_s",
            "updated_at",
            "start_time",
            "end_time",
            "segment_type",
            "repetitions",
        ]
        read_only_fields = fields

    @staticmethod
    def _exercise_set(obj: Repetition) -> ExerciseSet:
        return obj.set

    def _offsets(self, obj: Repetition) -> tuple[float, float]:
        return obj.start_s - obj.set.start_s, obj.end_s - obj.set.start_s

    def get_repetitions(self, obj) -> int:
        return 1


class RecountSerializer(serializers.Serializer):
    """``POST /sessions/{id}/recount/``: count the session again with this exemplar."""

    exemplar_set = serializers.IntegerField(
        min_value=1,
        help_text="the id of one of the user's reviewed sets of the session's exercise (no exercise: `unknown`), "
        "with 1 to 500 reps over 1 to 900 s; it may be a set of this session",
    )


class ReprocessSerializer(serializers.Serializer):
    sessions = serializers.ListField(child=serializers.UUIDField(), required=False, allow_empty=False, max_length=5000)
    all = serializers.BooleanField(required=False, default=False, help_text="re-count every session")

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("sessions")) == bool(attrs.get("all")):
            raise serializers.ValidationError("give either `sessions` (a list of ids) or `all: true`")
        return attrs


class ReprocessResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="sessions queued for counting again")
    corrections_kept = serializers.IntegerField(
        help_text="sets users reviewed (confirmed, corrected or added) in the queued sessions: the re-count keeps them"
    )
    skipped = serializers.ListField(
        child=serializers.UUIDField(), help_text="requested sessions not queued: unknown, or queued or processing now"
    )


# --- Corrections ------------------------------------------------------------------------


class SetCorrectionSerializer(serializers.Serializer):
    """``PATCH /sets/{id}/``: the user's count of a set. Only ``reps`` is writable."""

    reps = serializers.IntegerField(
        min_value=0,
        max_value=MAX_SET_REPS,
        help_text="the user's count: the same as now confirms it, 0 marks a phantom set (nothing was done)",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            others = sorted(str(k) for k in data if k != "reps")
            if others:
                raise serializers.ValidationError(
                    {name: ["read-only: a correction changes reps only"] for name in others}
                )
        return super().to_internal_value(data)


class _FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class SetAddSerializer(serializers.Serializer):
    """``POST /sessions/{id}/sets/``: a set the counter missed. Seconds from the recording's first sample."""

    exercise = serializers.CharField(max_length=64, help_text="an exercise id of the catalog (GET /api/v1/exercises/)")
    reps = serializers.IntegerField(min_value=1, max_value=MAX_SET_REPS)
    start_s = _FiniteFloatField(min_value=0, help_text="seconds from the recording's first sample")
    end_s = _FiniteFloatField(min_value=0, help_text="after start_s, at most the session's duration_s")

    def validate_exercise(self, value: str) -> str:
        if not catalog.is_known(value):
            raise serializers.ValidationError(catalog.unknown_exercise_message(value))
        return value
