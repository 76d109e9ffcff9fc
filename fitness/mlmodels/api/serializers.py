from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fitness.mlmodels import extensions
from fitness.mlmodels.models import (
    SETTABLE_STAGE_CHOICES,
    Kind,
    ModelStageChange,
    ModelVersion,
    RuntimeStatus,
    ValidationStatus,
)
from fitness.mlmodels.validation import ValidatedModelFile, precheck_model_file
from inference.model import ModelFileError


class StageChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = ModelStageChange
        fields = ["from_stage", "to_stage", "changed_by", "changed_at", "note"]
        read_only_fields = fields


# The ``shadow`` summary the workouts app registers in fitness.mlmodels.extensions.
class ShadowSummarySerializer(serializers.Serializer):
    """How often a version agreed with production while it was staging."""

    sessions = serializers.IntegerField(help_text="sessions the version counted in the shadow")
    agreed = serializers.IntegerField(help_text="of those, with the same total reps and set count as production")
    agreement = serializers.FloatField(allow_null=True, help_text="agreed / sessions; null before any")
    errors = serializers.IntegerField(help_text="sessions the version could not count")


# The ``live_metrics`` summary the workouts app registers: how a version did on real uploads,
# judged by the users' reviews of the sets it counted.
class _LiveFiguresSerializer(serializers.Serializer):
    sets_counted = serializers.IntegerField(help_text="sets the version counted (in done sessions)")
    sets_reviewed = serializers.IntegerField(help_text="of those, sets users confirmed or corrected")
    sets_corrected = serializers.IntegerField(help_text="of those, sets whose user count differs from the counted one")
    sets = serializers.IntegerField(help_text="true sets: reviewed sets with reps > 0, user-added ones included")
    sets_exact = serializers.FloatField(allow_null=True, help_text="share of true sets counted exactly; null: none yet")
    sets_within_1 = serializers.FloatField(allow_null=True, help_text="share of true sets counted within +-1")
    count_mae = serializers.FloatField(allow_null=True, help_text="mean |counted - true| repetitions per true set")
    missed_sets = serializers.IntegerField(
        help_text="true sets the version counted 0 of: added by users in sessions it counted, or lost in a re-count"
    )
    phantom_sets = serializers.IntegerField(help_text="counted sets users corrected to 0 (nothing was done)")
    phantom_reps = serializers.IntegerField(help_text="the repetitions counted in phantom sets")


class LiveMetricsSerializer(_LiveFiguresSerializer):
    """Live accuracy of a version from users' corrections, overall, by exercise and by method."""

    by_exercise = serializers.DictField(child=_LiveFiguresSerializer(), help_text="the same figures per exercise")
    by_method = serializers.DictField(
        child=_LiveFiguresSerializer(), help_text="the same per counting method (`manual`: a set only the user found)"
    )


_VERSION_FIELDS = [
    "id",
    "version",
    "kind",
    "stage",
    "source",
    "checksum",
    "size_bytes",
    "validation_status",
    "validation_error",
    "runtime_status",
    "runtime_error",
    "channels",
    "derived_channels",
    "sample_rate_hz",
    "window",
    "stride",
    "label_offset",
    "labels",
    "exercises",
    "scaling",
    "training_data_digest",
    "hyperparameters",
    "code_version",
    "metrics",
    "evaluation_status",
    "evaluation_error",
    "evaluated_at",
    "shadow",
    "notes",
    "uploaded_by",
    "uploaded_at",
    "activated_by",
    "activated_at",
]


#: Summaries other apps register per version (:mod:`fitness.mlmodels.extensions`), by field.
SUMMARY_FIELDS = ("shadow",)
_NO_SHADOW = {"sessions": 0, "agreed": 0, "agreement": None, "errors": 0}  # no app counts in the shadow
_NO_LIVE_METRICS: dict = {}  # no app registered live metrics


class _VersionListSerializer(serializers.ListSerializer):
    """Asks each registered summary once for the whole page, not once per version."""

    def to_representation(self, data):
        versions = list(data.all() if hasattr(data, "all") else data)
        for name in SUMMARY_FIELDS:
            self.context.setdefault("summaries", {})[name] = extensions.version_summaries(name, versions)
        return super().to_representation(versions)


class ModelVersionSerializer(serializers.ModelSerializer):
    """A registered model version: what its file carries and what happened to it."""

    kind = serializers.ChoiceField(
        choices=Kind.choices,
        read_only=True,
        help_text=(
            "`classifier` (the phase classifier: a `.keras` and its `.onnx` export) or `counter` (the learned "
            "repetition counter: one `.onnx`, its spec in `metadata`; the classifier fields below are empty or "
            "null); each kind has its own production version"
        ),
    )
    channels = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="channels an upload must carry; [] for a counter"
    )
    derived_channels = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="channels the model computes from them"
    )
    labels = serializers.ListField(child=serializers.CharField(), read_only=True)
    exercises = serializers.ListField(child=serializers.CharField(), read_only=True)
    sample_rate_hz = serializers.FloatField(
        read_only=True, allow_null=True, help_text="the classifier's sample rate; a counter's grid (Hz)"
    )
    window = serializers.IntegerField(read_only=True, allow_null=True)
    stride = serializers.IntegerField(read_only=True, allow_null=True, help_text="null for a counter")
    label_offset = serializers.IntegerField(read_only=True, allow_null=True)
    scaling = serializers.JSONField(read_only=True)
    training_data_digest = serializers.CharField(read_only=True)
    hyperparameters = serializers.JSONField(read_only=True)
    code_version = serializers.CharField(read_only=True)
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    activated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    validation_status = serializers.ChoiceField(
        choices=ValidationStatus.choices,
        read_only=True,
        help_text=(
            "the full check of the file (it loads, a dry run and a synthetic recording count, its export), made "
            "by an admin-queue worker after the upload: `pending`, then `valid` or `invalid` (reason in "
            "`validation_error`); only a `valid` version can be activated or staged"
        ),
    )
    validation_error = serializers.CharField(read_only=True, help_text="why the file is invalid; empty otherwise")
    runtime_status = serializers.ChoiceField(
        choices=RuntimeStatus.choices,
        read_only=True,
        help_text=(
            "the `.onnx` export workers load, made by an admin-queue worker after the upload: `pending` (workers "
            "count with the `.keras` meanwhile), `ready`, or `failed` (reason in `runtime_error`; the `.keras` counts)"
        ),
    )
    runtime_error = serializers.CharField(read_only=True, help_text="why the export failed; empty otherwise")
    shadow = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = _VERSION_FIELDS
        read_only_fields = _VERSION_FIELDS
        list_serializer_class = _VersionListSerializer

    def _summary(self, name: str, obj: ModelVersion) -> dict:
        found = self.context.get("summaries", {}).get(name)
        if found is None or obj.pk not in found:  # one version, not a list
            found = extensions.version_summaries(name, [obj])
        return found[obj.pk]

    @extend_schema_field(ShadowSummarySerializer)
    def get_shadow(self, obj: ModelVersion) -> dict:
        return self._summary("shadow", obj) or _NO_SHADOW


class ModelVersionDetailSerializer(ModelVersionSerializer):
    """A version with its full metadata and stage history (newest first)."""

    metadata = serializers.JSONField(read_only=True)
    runtime_checksum = serializers.CharField(read_only=True, help_text="SHA-256 of the export; empty without one")
    runtime_export = serializers.JSONField(
        read_only=True,
        help_text="how the export was made and checked (source_sha256, tolerance, max_abs_diff, ...), or {error}",
    )
    stage_history = StageChangeSerializer(source="stage_changes", many=True, read_only=True)

    live_metrics = serializers.SerializerMethodField()

    class Meta(ModelVersionSerializer.Meta):
        fields = [*_VERSION_FIELDS, "runtime_checksum", "runtime_export", "live_metrics", "metadata", "stage_history"]
        read_only_fields = fields

    @extend_schema_field(LiveMetricsSerializer)
    def get_live_metrics(self, obj: ModelVersion) -> dict:
        return self._summary("live_metrics", obj) or _NO_LIVE_METRICS


class ModelVersionUploadSerializer(serializers.Serializer):
    """Multipart upload of one ``.keras`` model file, or of a learned counter's ``.onnx``; its cheap
    checks run before anything is stored (the full check, and a classifier's ``.onnx`` export,
    afterwards, by a worker)."""

    file = serializers.FileField(
        allow_empty_file=False,
        help_text=(
            "a `.keras` phase classifier, or a learned counter's `.onnx` (recognised by its "
            "`inference_counter.json` metadata entry)"
        ),
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate_file(self, upload) -> ValidatedModelFile:
        if upload.size > settings.FITNESS_MAX_MODEL_BYTES:
            raise serializers.ValidationError(f"the file is larger than {settings.FITNESS_MAX_MODEL_BYTES} bytes")
        try:
            return precheck_model_file(upload.read())
        except ModelFileError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ActivateSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=255)


class StageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=SETTABLE_STAGE_CHOICES,
        help_text="`staging` counts new sessions in the shadow; production is reached by activation",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=255)


class EvaluateSerializer(serializers.Serializer):
    dataset = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text=(
            "a dataset kind: `corrections` evaluates on sessions users corrected (their reviewed counts as truth; "
            "`sessions` narrows them; figures under metrics.corrections, beside the LOSO ones); default: labelled"
        ),
    )
    sessions = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        max_length=500,
        help_text=(
            "labelled (exermote) sessions to evaluate on; default: the configured evaluation sessions, "
            "else the shipped evaluation manifest"
        ),
    )

    def validate_dataset(self, value: str) -> str:
        kinds = [source.kind for source in extensions.dataset_sources()]
        if value and value not in kinds:
            raise serializers.ValidationError(f"unknown dataset kind {value!r}; one of: {', '.join(kinds) or 'none'}")
        return value
