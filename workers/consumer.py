"""The worker's consumer: Celery's own, made to survive a broker outage with a task in flight.

Celery 5.7 handles a lost broker connection by collecting it (which drops the kombu
transport's client) and then closing it. Closing a Redis channel that still holds an
unacknowledged message (with ``acks_late`` and prefetch 1 there usually is one) tries to
put that message back through the dropped client, and the ``AttributeError`` that follows
is not a connection error, so it ends the worker instead of starting the reconnect
(seen in ``tests/faults/test_broker_outage.py``; kombu 5.7.0).

Nothing is lost by skipping that step: the broker is unreachable at that moment anyway,
kombu gives unacknowledged messages kept in Redis back after the visibility timeout, and the sweep
(``workers.tasks.requeue_stale_sessions``) queues stale sessions again.
"""

from __future__ import annotations

from celery.worker.consumer import Consumer as CeleryConsumer


def skip_restore_on_close(connection) -> None:
    """Make closing ``connection``'s channels leave their unacknowledged messages to the broker.

    ``connection``: a ``kombu.Connection`` (or None). Touches only channels that exist; a
    connection without a transport is left alone.
    """
    transport = getattr(connection, "_transport", None)
    for channel in list(getattr(transport, "channels", ())):
        channel.do_restore = False


class Consumer(CeleryConsumer):
    """Celery's consumer; after a lost connection, closing it no longer ends the worker."""

    def on_connection_error_after_connected(self, exc):
        skip_restore_on_close(self.connection)
        super().on_connection_error_after_connected(exc)
