"""Stages of model versions: activation (and rollback), staging; every change is logged."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from ..models import SETTABLE_STAGE_CHOICES, Kind, ModelStageChange, ModelVersion, Stage, ValidationStatus
from .common import RegistryError

if TYPE_CHECKING:
    from fitness.accounts.models import User

logger = logging.getLogger(__name__)


def _lock_registry() -> None:
    """Lock every version row, in id order, until the transaction ends.

    Every stage change takes this lock first, so concurrent changes run one after the
    other and each sees the stages the previous one committed (PostgreSQL; SQLite
    serialises write transactions by itself).
    """
    list(ModelVersion.objects.select_for_update().order_by("pk").values_list("pk", flat=True))


def _change_stage(version: ModelVersion, to_stage: str, *, user: User | None, note: str = "") -> None:
    from_stage = version.stage
    version.stage = to_stage
    version.save(update_fields=["stage"])
    ModelStageChange.objects.create(
        version=version, from_stage=from_stage, to_stage=to_stage, changed_by=user, note=(note or "")[:255]
    )
    logger.info("model version %s: %s -> %s (by %s)", version.version, from_stage, to_stage, user or "system")


def _check_stored_file(version: ModelVersion) -> None:
    """The stored files (``.keras`` and its export) exist and are the registered ones (before they may count)."""
    stored = [(version.file, version.checksum, "file")]
    if version.runtime_file:
        stored.append((version.runtime_file, version.runtime_checksum, "export"))
    for file, checksum, what in stored:
        digest = hashlib.sha256()
        try:
            with file.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise RegistryError(f"the {what} of version {version.version} cannot be read: {exc}") from exc
        if digest.hexdigest() != checksum:
            raise RegistryError(f"the stored {what} of version {version.version} does not match its checksum")


def _check_valid(version: ModelVersion) -> None:
    """Only a version whose full check passed may count sessions."""
    if version.validation_status == ValidationStatus.VALID:
        return
    if version.validation_status == ValidationStatus.INVALID:
        raise RegistryError(f"version {version.version} is invalid: {version.validation_error}")
    raise RegistryError(
        f"version {version.version} is not validated yet (validation_status {version.validation_status}); "
        "wait until it is valid"
    )


def model_version_activate(*, version: ModelVersion | int, user: User | None, note: str = "") -> ModelVersion:
    """Make a version ``production``; the previous production version of its kind becomes ``archived``.

    One transaction under the registry lock, so that concurrent activations serialise and
    exactly one version of each kind is production afterwards (activating a counter version
    leaves the classifier's production version as it is, and the other way round). Activating an archived version is the
    rollback; activating the production version changes nothing. Workers count with the
    new version from their next task on.

    Raises:
        ModelVersion.DoesNotExist: no such version.
        RegistryError: it is not ``valid`` (yet), or its stored file is missing or changed.
    """
    pk = getattr(version, "pk", version)
    _check_stored_file(ModelVersion.objects.get(pk=pk))
    with transaction.atomic():
        _lock_registry()
        target = ModelVersion.objects.get(pk=pk)
        if target.stage == Stage.PRODUCTION:
            return target
        _check_valid(target)
        for previous in ModelVersion.objects.filter(stage=Stage.PRODUCTION, kind=target.kind):
            _change_stage(previous, Stage.ARCHIVED, user=user, note=f"replaced by {target.version}")
        target.activated_by = user
        target.activated_at = timezone.now()
        target.save(update_fields=["activated_by", "activated_at"])
        _change_stage(target, Stage.PRODUCTION, user=user, note=note)
    return target


#: Stages :func:`model_version_set_stage` can give; production goes through activation.
SETTABLE_STAGES = tuple(value for value, _ in SETTABLE_STAGE_CHOICES)


def model_version_set_stage(
    *, version: ModelVersion | int, stage: str, user: User | None, note: str = ""
) -> ModelVersion:
    """Put a version in ``staging`` (shadow counting), ``none`` or ``archived``.

    Raises:
        RegistryError: ``production`` asked for (use activation), the version is production
            (activate another one instead), a staging version is not ``valid`` or its file
            is missing, or is a counter version (shadow counting runs classifier versions only).
    """
    if stage not in SETTABLE_STAGES:
        raise RegistryError(
            f"stage must be one of {', '.join(SETTABLE_STAGES)}; activate a version to make it production"
        )
    pk = getattr(version, "pk", version)
    if stage == Stage.STAGING:
        _check_stored_file(ModelVersion.objects.get(pk=pk))
    with transaction.atomic():
        _lock_registry()
        target = ModelVersion.objects.get(pk=pk)
        if target.stage == stage:
            return target
        if target.stage == Stage.PRODUCTION:
            raise RegistryError("the production version keeps its stage until another version is activated")
        if stage == Stage.STAGING:
            if target.kind == Kind.COUNTER:
                raise RegistryError(
                    f"version {target.version} is a counter: shadow counting runs classifier versions only; "
                    "evaluate it on users' corrections, then activate it"
                )
            _check_valid(target)
        _change_stage(target, stage, user=user, note=note)
    return target
