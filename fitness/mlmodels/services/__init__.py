"""Writes for the model registry (views, the admin, commands and tasks call these).

- :mod:`.registry`: :func:`model_version_create` stores a file that passed
  :func:`~fitness.mlmodels.validation.validate_model_file`; :func:`register_shipped_model`
  registers the model shipped with the code, :func:`register_shipped_counter` the learned counter.
- :mod:`.validation`: :func:`model_version_queue_validation` (after an upload) and
  :func:`model_version_validate` (worker, admin queue): the full check and the export;
  :func:`model_versions_requeue_stale` (the sweep) queues again what stayed pending.
- :mod:`.stages`: :func:`model_version_activate` (also the rollback) and
  :func:`model_version_set_stage`; every change is logged in ``ModelStageChange``.
- :mod:`.export`: :func:`model_version_queue_export` (after an upload, or by staff) and
  :func:`model_version_export` (worker, admin queue): the ``.onnx`` export workers load.
- :mod:`.evaluation`: :func:`model_version_queue_evaluation` (web) and
  :func:`model_version_evaluate` (worker).

Shadow counting and re-processing change sessions, so they live with them
(``fitness.workouts.services``).
"""

from .common import MAX_ERROR_CHARS, RegistryError, jsonable
from .evaluation import evaluation_dataset, model_version_evaluate, model_version_queue_evaluation
from .export import model_version_export, model_version_queue_export
from .registry import model_version_create, refuse_registered, register_shipped_counter, register_shipped_model
from .stages import SETTABLE_STAGES, model_version_activate, model_version_set_stage
from .validation import model_version_queue_validation, model_version_validate, model_versions_requeue_stale

__all__ = [
    "MAX_ERROR_CHARS",
    "SETTABLE_STAGES",
    "RegistryError",
    "evaluation_dataset",
    "jsonable",
    "model_version_activate",
    "model_version_create",
    "model_version_evaluate",
    "model_version_export",
    "model_version_queue_evaluation",
    "model_version_queue_export",
    "model_version_queue_validation",
    "model_version_set_stage",
    "model_version_validate",
    "model_versions_requeue_stale",
    "refuse_registered",
    "register_shipped_counter",
    "register_shipped_model",
]
