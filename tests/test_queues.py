"""Three queues: users' counting apart from admin jobs and webhook deliveries
(``CELERY_TASK_ROUTES``), on real brokers."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from kombu import Connection

from workers.celery import app

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("TEST_QUEUES_REDIS_URL", "redis://127.0.0.1:6379/12")

COUNTING = {"workers.tasks.process_session"}
ADMIN = {
    "workers.tasks.reprocess_session",
    "workers.tasks.shadow_count_session",
    "workers.tasks.evaluate_model_version",
    "workers.tasks.export_model_version",
    "workers.tasks.validate_model_version",
    "workers.tasks.requeue_stale_model_versions",
    "workers.tasks.requeue_stale_sessions",
    "workers.tasks.delete_orphan_files",
    "workers.tasks.purge_tombstones",
    "workers.tasks.flush_expired_tokens",
}
WEBHOOKS = {"webhooks.deliver"}


def project_tasks() -> set[str]:
    app.loader.import_default_modules()  # autodiscovery, as a worker does
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_has_its_queue():
    assert project_tasks() == COUNTING | ADMIN | WEBHOOKS == set(settings.FITNESS_TASK_QUEUES)
    for name in COUNTING:
        assert app.amqp.router.route({}, name)["queue"].name == settings.CELERY_COUNTING_QUEUE == "counting"
    for name in ADMIN:
        assert app.amqp.router.route({}, name)["queue"].name == settings.CELERY_ADMIN_QUEUE == "admin"
    for name in WEBHOOKS:
        assert app.amqp.router.route({}, name)["queue"].name == settings.CELERY_WEBHOOKS_QUEUE == "webhooks"


def test_a_worker_without_q_consumes_every_queue():
    """`make run`'s worker passes no -Q: it consumes the declared queues, counting, admin and webhooks."""
    assert {queue.name for queue in app.conf.task_queues} == {"counting", "admin", "webhooks"}
    assert app.conf.task_default_queue == "counting"
    worker_args = re.search(r"^WORKER_ARGS \?= (.*)$", (REPO / "Makefile").read_text(), re.M).group(1)
    assert "-Q" not in worker_args.split()


def test_compose_runs_a_worker_per_queue():
    services = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())["services"]
    queues = {name: re.search(r"-Q (\S+)", s.get("command", "")) for name, s in services.items()}
    assert queues["worker"].group(1) == "counting"
    assert queues["worker-admin"].group(1) == "admin"
    assert queues["worker-webhooks"].group(1) == "webhooks"
    assert "-Q" not in services["beat"]["command"]


# --- Real brokers: where does each task's message land? ------------------------------------


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def filesystem_connection(root: Path) -> Connection:
    """Kombu's filesystem transport with every folder of it under ``root``: its control folder
    (exchange tables) defaults to ``control`` in the current directory, i.e. the checkout."""
    folder = root / "broker"
    folder.mkdir()
    return Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(root / "control"),
            "processed_folder": str(root / "processed"),
        },
    )


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, tmp_path):
    """A broker connection of the test's own: Kombu's filesystem transport in ``tmp_path``, or a
    Redis database apart from the broker's (skipped when Redis does not answer)."""
    if request.param == "redis":
        if not redis_reachable():
            pytest.skip(f"no Redis at {REDIS_URL}")
        conn = Connection(REDIS_URL)
    else:
        conn = filesystem_connection(tmp_path)
    with conn:
        for queue in app.conf.task_queues:
            queue(conn.default_channel).declare()
            queue(conn.default_channel).purge()
        yield conn
        for queue in app.conf.task_queues:
            queue(conn.default_channel).purge()


def drain(conn: Connection, queue: str) -> list[str]:
    """Task names of the messages waiting on ``queue`` (consumed)."""
    names = []
    with conn.SimpleQueue(queue) as simple:
        while True:
            try:
                message = simple.get(block=False)
            except simple.Empty:
                return names
            names.append(message.headers["task"])
            message.ack()


def test_each_task_reaches_its_own_queue_only(broker):
    app.loader.import_default_modules()
    session_id = str(uuid.uuid4())
    args = {
        "workers.tasks.process_session": [session_id],
        "workers.tasks.reprocess_session": [session_id],
        "workers.tasks.shadow_count_session": [session_id, 1],
        "workers.tasks.evaluate_model_version": [1, {"kind": "manifest"}],
        "workers.tasks.export_model_version": [1],
        "workers.tasks.validate_model_version": [1],
        "workers.tasks.requeue_stale_model_versions": [],
        "workers.tasks.requeue_stale_sessions": [],
        "workers.tasks.delete_orphan_files": [],
        "workers.tasks.purge_tombstones": [],
        "workers.tasks.flush_expired_tokens": [],
        "webhooks.deliver": [session_id],
    }
    for name, task_args in args.items():
        app.tasks[name].apply_async(task_args, connection=broker)
    assert sorted(drain(broker, "counting")) == sorted(COUNTING)
    assert sorted(drain(broker, "admin")) == sorted(ADMIN)
    assert sorted(drain(broker, "webhooks")) == sorted(WEBHOOKS)


def test_reprocessing_goes_to_the_admin_queue_and_uploads_to_counting(broker, monkeypatch):
    """The services' own publishing: an upload's task and a reprocessing's."""
    from fitness.workouts import tasks
    from fitness.workouts.services import queueing

    for task in (tasks.process_session, tasks.reprocess_session):
        # ``delay`` as it is, on the test's broker connection.
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply_async(args, connection=broker))
    assert queueing.enqueue_processing("00000000-0000-0000-0000-000000000001")
    assert queueing.enqueue_processing("00000000-0000-0000-0000-000000000002", reprocess=True)
    assert drain(broker, "counting") == ["workers.tasks.process_session"]
    assert drain(broker, "admin") == ["workers.tasks.reprocess_session"]


def test_the_filesystem_broker_writes_nothing_in_the_current_directory(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    app.loader.import_default_modules()
    own = tmp_path / "own"
    own.mkdir()
    with filesystem_connection(own) as conn:
        app.tasks["workers.tasks.requeue_stale_sessions"].apply_async([], connection=conn)
        assert drain(conn, "admin") == ["workers.tasks.requeue_stale_sessions"]
    assert list(cwd.iterdir()) == []
