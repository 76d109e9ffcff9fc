"""Writes for workouts and sensor sessions (the business logic; views, the admin and tasks call these).

- :mod:`.uploads`: :func:`session_create` parses and validates the recording in the request,
  stores the raw file and queues counting after the transaction commits; :func:`session_delete`.
- :mod:`.processing` (worker): :func:`session_process` counts the stored file and saves the
  result with :func:`session_save_result`, or marks the session failed with a reason.
- :mod:`.sweep`: :func:`sessions_requeue_stale` queues again what a lost message or a lost
  worker left behind; :mod:`.queueing` publishes the tasks.
- :mod:`.shadow`: staging model versions count done sessions beside production.
- :mod:`.reprocessing`: :func:`sessions_reprocess` re-counts sessions with the production version.
- :mod:`.exemplars`: a reviewed set as the learned counter's exemplar (:func:`exemplar_for`, in the
  worker), checked at upload (:func:`exemplar_set_check`); :func:`session_recount` re-counts a
  done session with one.
- :mod:`.corrections`: users correct counted sets (:func:`set_correct`) and add missed ones
  (:func:`set_add`); a re-count keeps them.
- :mod:`.evaluation_sessions`: labelled sessions as the registry's evaluation datasets.
- :mod:`.storage_sweep`: stored recordings no session refers to (a periodic check).
"""

from .corrections import CorrectionError, SessionNotDoneError, reviewed_set_count, set_add, set_correct
from .exemplars import ExemplarError, exemplar_for, exemplar_set_check, session_recount
from .processing import (
    MAX_ERROR_CHARS,
    active_counter,
    run_pipeline,
    session_mark_failed,
    session_process,
    session_save_result,
)
from .queueing import enqueue_processing, sessions_enqueue
from .reprocessing import sessions_reprocess
from .shadow import shadow_count, shadow_queue
from .storage_sweep import orphan_files_delete
from .sweep import SWEEP_BATCH, sessions_requeue_stale
from .uploads import (
    MAX_CSV_COLUMNS,
    AccountGoneError,
    check_countable,
    parse_upload,
    recording_summary,
    session_create,
    session_delete,
)
from .workouts import workout_create, workout_update

__all__ = [
    "MAX_CSV_COLUMNS",
    "MAX_ERROR_CHARS",
    "SWEEP_BATCH",
    "AccountGoneError",
    "CorrectionError",
    "ExemplarError",
    "SessionNotDoneError",
    "active_counter",
    "check_countable",
    "enqueue_processing",
    "exemplar_for",
    "exemplar_set_check",
    "orphan_files_delete",
    "parse_upload",
    "recording_summary",
    "reviewed_set_count",
    "run_pipeline",
    "session_create",
    "session_delete",
    "session_mark_failed",
    "session_process",
    "session_recount",
    "session_save_result",
    "sessions_enqueue",
    "sessions_reprocess",
    "sessions_requeue_stale",
    "set_add",
    "set_correct",
    "shadow_count",
    "shadow_queue",
    "workout_create",
    "workout_update",
]
