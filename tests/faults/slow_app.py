"""The project's Celery app for fault tests, started as ``celery -A tests.faults.slow_app``.

With ``FAULT_SLOW_COUNT_S`` set, counting touches ``FAULT_STARTED_FILE`` and then sleeps
that long before it counts, so that a test can kill the worker in the middle of a task.
"""

import os
import time
from pathlib import Path

from celery.signals import worker_process_init, worker_ready

from workers.celery import app

__all__ = ("app",)


@worker_ready.connect  # solo pool: tasks run in the main process
@worker_process_init.connect  # prefork: in each child
def _slow_down_counting(**kwargs) -> None:
    delay = float(os.environ.get("FAULT_SLOW_COUNT_S") or 0)
    if not delay:
        return
    from fitness.workouts.services import processing

    count = processing.run_pipeline

    def slow_run_pipeline(recording, *, exercise, **kwargs):
        Path(os.environ["FAULT_STARTED_FILE"]).touch()
        time.sleep(delay)
        return count(recording, exercise=exercise, **kwargs)

    processing.run_pipeline = slow_run_pipeline
