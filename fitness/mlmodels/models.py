"""The model registry: versions of the phase classifier and of the learned counter, and their stage history.

A :class:`ModelVersion` is one validated model file with the spec (metadata) it carries. Its
``kind`` says which model it is: the phase ``classifier`` (a ``.keras`` and its ``.onnx`` export)
or the learned repetition ``counter`` (one ``.onnx`` carrying an
:class:`inference.density.CounterSpec`). Its ``version`` is the ``version`` of that metadata, the
same string a counted session records in ``SensorSession.model_version``. Exactly one version of
each kind is ``production`` (a partial unique constraint on ``kind``;
:func:`fitness.mlmodels.services.model_version_activate` serialises activations); ``staging``
classifier versions count new sessions in the background
(``fitness.workouts.models.ShadowResult``, kept with the sessions), never shown to users.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from inference.spec import ModelSpec

if TYPE_CHECKING:
    from inference.density import CounterSpec


class Kind(models.TextChoices):
    """Which model a version is: each kind has its own production version."""

    CLASSIFIER = "classifier", "Phase classifier"
    COUNTER = "counter", "Learned repetition counter"


class Stage(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging (shadow)"
    ARCHIVED = "archived", "Archived"
    NONE = "none", "None"


#: Stages an admin sets directly; ``production`` is reached by activation only.
SETTABLE_STAGE_CHOICES = [(s.value, s.label) for s in (Stage.STAGING, Stage.NONE, Stage.ARCHIVED)]


class Source(models.TextChoices):
    UPLOAD = "upload", "Uploaded"
    SHIPPED = "shipped", "Shipped with the code"


class EvaluationStatus(models.TextChoices):
    NEVER = "never", "Not evaluated"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ValidationStatus(models.TextChoices):
    """Where the full check of a version's file stands (load, dry run, synthetic count, export)."""

    PENDING = "pending", "Pending (queued on the admin queue)"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class RuntimeStatus(models.TextChoices):
    """Where a version's ``.onnx`` export stands (derived from its fields, not stored)."""

    PENDING = "pending", "Pending (workers load the .keras)"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed (workers load the .keras)"


#: Longest version string: what ``SensorSession.model_version`` can record.
VERSION_MAX_LENGTH = 64


def model_upload_to(instance: ModelVersion, filename: str) -> str:
    """``models/<sha256>.keras`` (a counter's: ``.onnx``): content-addressed, no client-controlled path parts."""
    suffix = "onnx" if instance.kind == Kind.COUNTER else "keras"
    return f"models/{instance.checksum}.{suffix}"


def runtime_upload_to(instance: ModelVersion, filename: str) -> str:
    """``models/<sha256>.onnx``: the serving runtime's export, content-addressed like the ``.keras``."""
    return f"models/{instance.runtime_checksum}.onnx"


class ModelVersion(models.Model):
    """One registered model file. The file never changes; its row records what happened to it."""

    version = models.CharField(max_length=VERSION_MAX_LENGTH, unique=True)
    #: :class:`Kind`: ``classifier`` (``file`` is a ``.keras``, exported to ``runtime_file``) or
    #: ``counter`` (``file`` is the ``.onnx`` workers load; no export).
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CLASSIFIER, db_index=True)
    file = models.FileField(upload_to=model_upload_to, max_length=255)
    #: SHA-256 of the file (hex).
    checksum = models.CharField(max_length=64, unique=True)
    size_bytes = models.PositiveBigIntegerField()
    #: The ``.onnx`` exported from ``file`` (:mod:`inference.export`) by a worker of the admin queue
    #: after the upload (the shipped model's: at registration): what workers load. Empty until
    #: then, and for versions registered before exports existed (workers then load the ``.keras``).
    runtime_file = models.FileField(upload_to=runtime_upload_to, max_length=255, blank=True, default="")
    #: SHA-256 of ``runtime_file`` (hex); empty with it.
    runtime_checksum = models.CharField(max_length=64, blank=True, default="")
    #: How the export was made and checked: source checksum, tolerance, largest difference measured;
    #: ``{"error": reason}`` when the export failed.
    runtime_export = models.JSONField(default=dict, blank=True)
    #: The full check of the file (it loads, a dry run and a synthetic recording count, its export
    #: matches Keras), made by a worker of the admin queue after an upload
    #: (:func:`fitness.mlmodels.services.model_version_validate`): ``pending`` until then. Only a
    #: ``valid`` version may be activated or staged.
    validation_status = models.CharField(
        max_length=16, choices=ValidationStatus.choices, default=ValidationStatus.PENDING, db_index=True
    )
    #: Why the file is ``invalid``; empty otherwise.
    validation_error = models.TextField(blank=True, default="")
    #: When the version's validation or export task was last queued (the sweep queues again what
    #: stays pending longer than ``FITNESS_SWEEP_MODEL_PENDING_AFTER_S`` after it); None: never.
    task_queued_at = models.DateTimeField(null=True, blank=True)
    #: Everything the file carries: channels, sample rate, window, labels, scaling, ...
    metadata = models.JSONField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE, db_index=True)
    #: The latest evaluation: figures of ``inference.scoring.evaluate_model`` plus ``dataset``.
    metrics = models.JSONField(default=dict, blank=True)
    evaluation_status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.NEVER
    )
    evaluation_error = models.TextField(blank=True, default="")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(stage=Stage.PRODUCTION),
                name="one_production_model_version_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.stage})"

    @property
    def is_counter(self) -> bool:
        return self.kind == Kind.COUNTER

    @cached_property
    def spec(self) -> ModelSpec:
        """The stored metadata of a classifier version as a validated :class:`~inference.spec.ModelSpec`.

        Raises:
            ModelSpecError: metadata stored before validation got stricter, or edited by hand
                (also for a counter version: its spec is :attr:`counter_spec`).
        """
        return ModelSpec.from_dict(self.metadata or {})

    @cached_property
    def counter_spec(self) -> CounterSpec:
        """The stored metadata of a counter version as a :class:`~inference.density.CounterSpec`.

        Raises:
            ValueError: the metadata has no version (not a counter's).
        """
        from inference.density import CounterSpec

        return CounterSpec.from_dict(self.metadata or {})

    @property
    def runtime_status(self) -> str:
        """:class:`RuntimeStatus`: ``ready`` with an export, ``failed`` with an export error, else ``pending``.

        A counter version's file is itself the ``.onnx`` workers load: always ``ready``.
        """
        if self.is_counter:
            return RuntimeStatus.READY
        if self.runtime_file and self.runtime_checksum:
            return RuntimeStatus.READY
        if (self.runtime_export or {}).get("error"):
            return RuntimeStatus.FAILED
        return RuntimeStatus.PENDING

    @property
    def runtime_error(self) -> str:
        """Why the export failed; empty unless ``runtime_status`` is ``failed``."""
        if self.runtime_status != RuntimeStatus.FAILED:
            return ""
        return str(self.runtime_export["error"])

    # What the spec says, for the API and the admin. A counter version has no channels, labels,
    # window or scaling of a classifier: empty (or None), its own spec is in ``metadata``.
    @property
    def channels(self) -> list[str]:
        return [] if self.is_counter else list(self.spec.channels)

    @property
    def derived_channels(self) -> list[str]:
        """Channels the model computes from ``channels`` (an upload does not send them)."""
        return [] if self.is_counter else list(self.spec.derived_channels)

    @property
    def labels(self) -> list[str]:
        return [] if self.is_counter else list(self.spec.labels)

    @property
    def exercises(self) -> list[str]:
        return [] if self.is_counter else list(self.spec.exercises)

    @property
    def sample_rate_hz(self) -> float:
        """The classifier's sample rate; a counter's grid (Hz)."""
        return float(self.counter_spec.grid_hz) if self.is_counter else self.spec.sample_rate_hz

    @property
    def window(self) -> int | None:
        return None if self.is_counter else self.spec.window

    @property
    def stride(self) -> int | None:
        return None if self.is_counter else self.spec.stride

    @property
    def label_offset(self) -> int | None:
        return None if self.is_counter else self.spec.label_offset

    @property
    def scaling(self) -> dict:
        return {} if self.is_counter else self.spec.scaling.to_dict()

    @property
    def training_data_digest(self) -> str:
        if self.is_counter:
            return str(self.counter_spec.training.get("digest") or "")
        return self.spec.training_data_digest

    @property
    def hyperparameters(self) -> dict:
        return {} if self.is_counter else self.spec.hyperparameters

    @property
    def code_version(self) -> str:
        if self.is_counter:
            return str(self.counter_spec.training.get("code_version") or "")
        return self.spec.code_version


class ModelStageChange(models.Model):
    """Audit log: every stage change of a version (who, when, from, to)."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Stage.choices, blank=True, default="")
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    #: None for changes made by the system (registration of the shipped model).
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now, db_index=True)
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version_id}: {self.from_stage or '-'} -> {self.to_stage}"
