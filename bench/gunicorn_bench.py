"""Gunicorn settings of ``bench/api_bench.py`` (``-c bench/gunicorn_bench.py``).

Uploads queue their counting task on the benchmark's own Redis queue (``BENCH_QUEUE``),
which no worker consumes and which the benchmark removes afterwards, so that measuring
the API never feeds another worker on the same broker.
"""

import os


def post_worker_init(worker) -> None:
    from fitness.workouts import tasks

    tasks.process_session.queue = os.environ["BENCH_QUEUE"]
    tasks.process_session._exec_options = None  # Celery caches routing options on first use
