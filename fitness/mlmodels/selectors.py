"""Reads for the model registry (staff only; nothing here is shown to ordinary users)."""

from __future__ import annotations

import logging

from django.db.models import Prefetch, QuerySet

from inference.spec import ModelSpec, ModelSpecError

from .models import Kind, ModelStageChange, ModelVersion, Stage

logger = logging.getLogger(__name__)


def model_version_list(*, with_history: bool = False) -> QuerySet[ModelVersion]:
    """Versions of every kind, newest upload first."""
    qs = ModelVersion.objects.select_related("uploaded_by", "activated_by")
    if with_history:
        qs = qs.prefetch_related(
            Prefetch("stage_changes", queryset=ModelStageChange.objects.select_related("changed_by"))
        )
    return qs


def production_spec() -> ModelSpec | None:
    """The production classifier version's spec (one query, no network loaded), or None while the
    registry has none or its stored metadata is no longer valid (logged)."""
    version = (
        ModelVersion.objects.filter(stage=Stage.PRODUCTION, kind=Kind.CLASSIFIER)
        .only("pk", "version", "kind", "metadata")
        .first()
    )
    if version is None:
        return None
    try:
        return version.spec
    except ModelSpecError:
        logger.exception("model version %s: stored metadata is not a valid spec", version.version)
        return None
