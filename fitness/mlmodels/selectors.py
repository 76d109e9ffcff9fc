"""Reads for the model registry (staff only; nothing here is shown to ordinary users)."""

from __future__ import annotations

import logging

from django.db.models import Count, Prefetch, Q, QuerySet

from inference.spec import ModelSpec, ModelSpecError

from .models import ModelStageChange, ModelVersion, ShadowResult, Stage

logger = logging.getLogger(__name__)


def model_version_list(*, with_history: bool = False) -> QuerySet[ModelVersion]:
    """Versions, newest upload first, annotated with their shadow agreement counts."""
    qs = ModelVersion.objects.select_related("uploaded_by", "activated_by").annotate(
        shadow_sessions=Count("shadow_results", filter=Q(shadow_results__error="")),
        shadow_agreed=Count("shadow_results", filter=Q(shadow_results__error="", shadow_results__agrees=True)),
        shadow_errors=Count("shadow_results", filter=~Q(shadow_results__error="")),
    )
    # Aggregating queries ignore Meta.ordering: say it again.
    qs = qs.order_by(*ModelVersion._meta.ordering)
    if with_history:
        qs = qs.prefetch_related(
            Prefetch("stage_changes", queryset=ModelStageChange.objects.select_related("changed_by"))
        )
    return qs


def shadow_summary(*, version: ModelVersion) -> dict:
    """``{"sessions", "agreed", "agreement", "errors"}`` of a version's shadow results."""
    rows = ShadowResult.objects.filter(model_version=version).aggregate(
        sessions=Count("id", filter=Q(error="")),
        agreed=Count("id", filter=Q(error="", agrees=True)),
        errors=Count("id", filter=~Q(error="")),
    )
    sessions = rows["sessions"]
    return {**rows, "agreement": rows["agreed"] / sessions if sessions else None}


def production_spec() -> ModelSpec | None:
    """The production version's spec (one query, no network loaded), or None while the registry
    is empty or its stored metadata is no longer valid (logged)."""
    version = ModelVersion.objects.filter(stage=Stage.PRODUCTION).only("pk", "version", "metadata").first()
    if version is None:
        return None
    try:
        return version.spec
    except ModelSpecError:
        logger.exception("model version %s: stored metadata is not a valid spec", version.version)
        return None
