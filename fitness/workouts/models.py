"""Workouts, uploaded sensor sessions and what the counter found in them."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.utils import timezone

from fitness.mlmodels.models import VERSION_MAX_LENGTH, ModelVersion


class RecordingFormat(models.TextChoices):
    """Upload formats; the same names as ``inference.io.FORMATS``."""

    EXERMOTE = "exermote", "Exermote CSV"
    CARA = "cara", "CaRa smartwatch CSV"
    CSV = "csv", "Canonical CSV"
    JSON = "json", "Canonical JSON"


class Workout(models.Model):
    """What a user did in one training; may hold several sensor sessions."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workouts")
    date = models.DateField()
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["user", "date"])]

    def __str__(self) -> str:
        return f"Workout {self.pk} of {self.user_id} on {self.date}"


def session_upload_to(instance: SensorSession, filename: str) -> str:
    """``sessions/<user id>/<session uuid><suffix>``: no client-controlled path parts."""
    suffix = PurePosixPath(filename).suffix.lower()[:10] or ".dat"
    if not suffix[1:].isalnum():
        suffix = ".dat"
    return f"sessions/{instance.user_id}/{instance.id}{suffix}"


class ExemplarChoice(models.TextChoices):
    """How a session's exemplar is chosen (``SensorSession.exemplar``)."""

    AUTO = "auto", "The newest reviewed set of the exercise"
    NONE = "none", "No exemplar"
    SET = "set", "The set named in exemplar_set"


#: What an upload may ask for (``set`` is stored when it names ``exemplar_set``).
UPLOAD_EXEMPLAR_CHOICES = [(c.value, c.label) for c in (ExemplarChoice.AUTO, ExemplarChoice.NONE)]


class SensorSession(models.Model):
    """One uploaded recording and the state of its counting."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sensor_sessions")
    workout = models.ForeignKey(Workout, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions")
    #: Client-generated id that makes the upload idempotent (unique per user).
    client_id = models.UUIDField(null=True, blank=True)
    file = models.FileField(upload_to=session_upload_to, max_length=255)
    format = models.CharField(max_length=16, choices=RecordingFormat.choices)
    #: The client's exercise, if known: an id of the catalog (inference.catalog), checked by the
    #: API rather than by choices here, so that adding an exercise needs no migration.
    exercise_hint = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True, default="")
    model_version = models.CharField(max_length=64, blank=True, default="")
    total_reps = models.PositiveIntegerField(null=True, blank=True)
    n_samples = models.PositiveIntegerField()
    duration_s = models.FloatField()
    sample_rate_hz = models.FloatField()
    channels = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    #: When the recording began (its first sample), UTC: the client's ``started_at``, else the
    #: recording's own clock where the format has one, else the upload time. Sets are dated from it.
    started_at = models.DateTimeField(default=timezone.now)
    #: When counting was last queued (upload, reprocess, or the sweep re-queueing it).
    queued_at = models.DateTimeField(default=timezone.now)
    #: When the current (or last) counting run began in a worker.
    processing_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: Counting runs started since the last upload or reprocess (a worker lost mid-task
    #: leaves one behind); past ``FITNESS_MAX_COUNT_ATTEMPTS`` the session fails.
    attempts = models.PositiveSmallIntegerField(default=0)
    #: Which exemplar the learned counter counts with (fitness/workouts/services/exemplars.py):
    #: ``auto`` the user's newest reviewed set of the hinted exercise, ``none`` none, ``set`` the
    #: set in ``exemplar_set`` (named at upload or by a re-count; none once that set is deleted).
    exemplar = models.CharField(max_length=8, choices=ExemplarChoice.choices, default=ExemplarChoice.AUTO)
    exemplar_set = models.ForeignKey(
        "ExerciseSet", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "client_id"], name="unique_session_client_id_per_user"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            # The few sessions of a user whose sets do not count (queued, processing, failed):
            # statistics leave them out without joining every set to its session.
            models.Index(fields=["user"], condition=~models.Q(status="done"), name="session_user_not_done_idx"),
            # Deleting a set looks up who names it as their exemplar (SET_NULL): few sessions do.
            models.Index(
                fields=["exemplar_set"], condition=models.Q(exemplar_set__isnull=False), name="session_exemplar_set_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Session {self.pk} ({self.status})"


class ExerciseSet(models.Model):
    """Consecutive repetitions of one exercise found in a session."""

    class Method(models.TextChoices):
        CLASSIFIER = "classifier", "Classifier"
        PEAKS = "peaks", "Peak detection"
        LEARNED = "learned", "Learned counter"
        #: A set the user added that no counter found (``counted_reps`` is null).
        MANUAL = "manual", "Added by the user"

    class Origin(models.TextChoices):
        COUNTER = "counter", "Found by the counter"
        USER = "user", "Added by the user"

    session = models.ForeignKey(SensorSession, on_delete=models.CASCADE, related_name="sets")
    #: Denormalised ``session.user``, so that per-user statistics use one index. No index of
    #: its own: the composite indexes below start with it (a narrower one would lure the
    #: planner away from their index-only scans).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exercise_sets", db_index=False
    )
    index = models.PositiveIntegerField()
    #: A catalog id (inference.catalog) or ``unknown``.
    exercise = models.CharField(max_length=64)
    method = models.CharField(max_length=16, choices=Method.choices)
    #: Repetitions as the user knows them: the counter's, or the user's correction (0: a phantom set).
    reps = models.PositiveIntegerField()
    #: What the counter said (never changed by a correction; a re-count updates it). Null for a
    #: set the user added that no counter found.
    counted_reps = models.PositiveIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.COUNTER)
    #: When the user last confirmed or corrected ``reps`` (or added the set); null: never reviewed.
    #: Reviewed sets survive re-counting and feed each model version's live metrics.
    reviewed_at = models.DateTimeField(null=True, blank=True)
    start_s = models.FloatField()
    end_s = models.FloatField()
    #: The reviewed set whose recording and count the learned counter was given as the exemplar
    #: of this movement when it counted this set (null: none was used).
    exemplar_set = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    #: ``session.started_at + start_s``: when the set began, for history and statistics (the
    #: API calls it ``started_at`` too). Stored, not derived, so that the indexes below serve it.
    performed_at = models.DateTimeField()
    #: Last write of the row (``auto_now``: a ``save(update_fields=...)`` must name it): the sync
    #: cursor of ``/sets/?updated_since=`` (fitness/workouts/sync.py).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [models.UniqueConstraint(fields=["session", "index"], name="unique_set_index_per_session")]
        # Designed for fitness/stats/selectors.py and the /sets/ history (measured by
        # bench/stats_bench.py); INCLUDE makes them covering on PostgreSQL (index-only scans).
        indexes = [
            # Time ranges, time series, streaks, the history's (performed_at, id) order.
            models.Index(
                fields=["user", "performed_at", "id"], include=["exercise", "reps", "session"], name="set_user_time_idx"
            ),
            # Per-exercise totals and exercise-filtered ranges.
            models.Index(
                fields=["user", "exercise", "performed_at"], include=["reps", "session"], name="set_user_exercise_idx"
            ),
            # Personal records: the set with the most repetitions per exercise, first achieved.
            models.Index(
                fields=["user", "exercise", "-reps", "performed_at", "id"],
                include=["start_s", "end_s", "session"],
                name="set_user_exercise_reps_idx",
            ),
            # Sync: the user's sets changed in a window, in (updated_at, id) order.
            models.Index(fields=["user", "updated_at", "id"], name="set_user_updated_idx"),
            # Deleting a set looks up the sets counted with it as their exemplar (SET_NULL).
            models.Index(
                fields=["exemplar_set"], condition=models.Q(exemplar_set__isnull=False), name="set_exemplar_set_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exercise} x{self.reps} (session {self.session_id})"

    @property
    def corrected(self) -> bool:
        """The user changed the count (or added the set): ``reps`` differs from ``counted_reps``."""
        return self.origin == self.Origin.USER or (self.reviewed_at is not None and self.reps != self.counted_reps)


class Repetition(models.Model):
    """One repetition of a set; seconds from the recording's first sample."""

    set = models.ForeignKey(ExerciseSet, on_delete=models.CASCADE, related_name="repetitions")
    index = models.PositiveIntegerField()
    start_s = models.FloatField()
    end_s = models.FloatField()
    #: Last write of the row: the sync cursor of ``/repetitions/?updated_since=``.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["set", "index"]
        constraints = [models.UniqueConstraint(fields=["set", "index"], name="unique_rep_index_per_set")]
        indexes = [models.Index(fields=["updated_at", "id"], name="rep_updated_idx")]

    def __str__(self) -> str:
        return f"rep {self.index} of set {self.set_id}"


class DeletedRow(models.Model):
    """A tombstone: a set or repetition of ``user`` deleted at ``deleted_at``, for sync clients.

    Written by the delete signals (fitness/workouts/signals.py) on every delete path except the
    account's own deletion; purged after ``FITNESS_SYNC_TOMBSTONE_DAYS`` (fitness/workouts/sync.py).
    """

    class Kind(models.TextChoices):
        SET = "set", "Exercise set"
        REPETITION = "repetition", "Repetition"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    row_id = models.BigIntegerField()
    deleted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deleted_at", "row_id"]
        indexes = [
            models.Index(fields=["user", "kind", "deleted_at", "row_id"], name="deleted_row_sync_idx"),
            models.Index(fields=["deleted_at"], name="deleted_row_purge_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.row_id} deleted at {self.deleted_at}"


class ShadowResult(models.Model):
    """What a staging version counted in a session that production counted. Never shown to users."""

    session = models.ForeignKey(SensorSession, on_delete=models.CASCADE, related_name="shadow_results")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    total_reps = models.PositiveIntegerField(null=True, blank=True)
    #: ``[{"exercise", "reps", "start_s", "end_s", "method"}]`` counted by the staging version.
    sets = models.JSONField(default=list, blank=True)
    #: What production had counted when the shadow ran (the comparison's other side).
    production_version = models.CharField(max_length=VERSION_MAX_LENGTH, blank=True, default="")
    production_total_reps = models.PositiveIntegerField(null=True, blank=True)
    production_sets = models.PositiveIntegerField(null=True, blank=True)
    #: Same total repetitions and the same number of sets as production.
    agrees = models.BooleanField(default=False)
    #: Why the staging version could not count the session (then ``agrees`` is False).
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "model_version"], name="unique_shadow_result_per_version"),
        ]

    def __str__(self) -> str:
        return f"shadow {self.model_version_id} on {self.session_id}: {'agrees' if self.agrees else 'differs'}"


class EvaluationSession(models.Model):
    """A labelled session (Exermote format) that evaluations use instead of the shipped manifest."""

    session = models.OneToOneField(SensorSession, on_delete=models.CASCADE, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["added_at", "id"]

    def __str__(self) -> str:
        return f"evaluation session {self.session_id}"
