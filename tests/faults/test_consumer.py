"""The worker's consumer (workers/consumer.py) against a real Redis server that goes away."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue
from kombu.utils.imports import symbol_by_name

from workers.celery import app
from workers.consumer import Consumer, skip_restore_on_close


def in_flight(url: str) -> tuple[Connection, object]:
    """A connection whose channel holds one delivered, unacknowledged message (a running task)."""
    connection = Connection(url, transport_options={"socket_connect_timeout": 1})
    channel = connection.channel()
    queue = Queue("in-flight", Exchange("in-flight"), "in-flight")
    connection.Producer(channel).publish({"task": 1}, exchange=queue.exchange, routing_key="in-flight", declare=[queue])
    assert queue(channel).get(no_ack=False) is not None
    return connection, channel


@pytest.mark.parametrize("guarded", [False, True])
def test_closing_a_lost_connection_with_a_message_in_flight(redis_server, guarded):
    """What Celery 5.7 does after losing the broker: collect the connection (the transport's
    client is dropped), then close it. kombu then tries to put the message back through the
    dropped client; unguarded, that raises AttributeError, which ends a worker."""
    connection, channel = in_flight(redis_server.url)
    if guarded:
        skip_restore_on_close(connection)
    redis_server.stop()
    connection._do_close_transport()  # what Connection.collect() does
    if guarded:
        channel.close()
        assert channel.closed
    else:  # kombu's behaviour this guards against; fails here once kombu fixes it
        with pytest.raises(AttributeError, match="hostname"):
            channel.close()


def test_the_worker_runs_this_consumer():
    assert symbol_by_name(app.conf.worker_consumer) is Consumer
