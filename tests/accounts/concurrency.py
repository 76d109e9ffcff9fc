"""Requests at the same moment, as tests/workouts/test_idempotency.py sends them."""

from __future__ import annotations

import threading

from django.db import connection


def race(requests: list) -> list:
    """Run the callables at the same moment, each in its own thread (and database connection)."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = requests[i]()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
