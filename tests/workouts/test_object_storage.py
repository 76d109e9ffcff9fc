"""Recordings in object storage: django-storages' S3 backend against a local S3 server (moto's
standalone server, standing in for MinIO). Uploads land in the bucket, a real Celery worker
reads and counts what the web process stored, the plot and the raw download read it back, and
every delete path (session, account, orphan sweep) removes the objects."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fitness.workouts import services
from fitness.workouts.models import SensorSession
from inference.io import read_recording
from inference.pipeline import count_recording
from tests.factories import UserFactory
from tests.fixtures.celery_worker import running_worker, wait_for_counting


def jumping_jacks(seconds: float = 40.0, rate_hz: float = 50.0, sets=((5.0, 25.0, 1.0), (30.0, 37.0, 1.0))) -> bytes:
    """Accelerometer CSV (m/s^2) with jumping jacks in ``sets`` of (start s, end s, Hz)."""
    t = np.arange(0, seconds, 1 / rate_hz)
    swing = np.zeros_like(t)
    for start, end, hz in sets:
        inside = (t > start) & (t < end)
        swing[inside] = 4.0 * np.sin(2 * np.pi * hz * t[inside])
    noise = np.random.default_rng(0).normal(0, 0.05, size=(len(t), 3))
    acc = np.column_stack([0.3 * swing, np.zeros_like(t), 9.81 + swing]) + noise
    out = io.StringIO()
    out.write("time_s,acc_x,acc_y,acc_z\n")
    for ti, (x, y, z) in zip(t, acc, strict=True):
        out.write(f"{ti:.3f},{x:.4f},{y:.4f},{z:.4f}\n")
    return out.getvalue().encode()


RAW = jumping_jacks()


def upload(api, raw: bytes = RAW) -> dict:
    resp = api.post(
        "/api/v1/sessions/",
        {"file": SimpleUploadedFile("jacks.csv", raw, content_type="text/csv"), "format": "csv",
         "exercise": "jumping_jack"},
        format="multipart",
    )  # fmt: skip
    assert resp.status_code == 202, resp.content
    return resp.json()


def expected_reps(raw: bytes = RAW) -> list[int]:
    """What the counting path makes of the bytes (the peak counter: no model needed)."""
    result = count_recording(read_recording(raw, "csv"), model=None, exercise="jumping_jack")
    return [s.reps for s in result.sets]


@pytest.mark.django_db
class TestThroughTheAPI:
    def test_upload_is_stored_in_the_bucket_not_on_disk(self, api, user, s3_bucket, stored_files):
        body = upload(api)
        key = f"sessions/{user.pk}/{body['id']}.csv"
        assert s3_bucket.keys() == [key]
        assert s3_bucket.read(key) == RAW
        assert stored_files() == [], "nothing under MEDIA_ROOT"
        download = api.get(f"/api/v1/sessions/{body['id']}/recording/")
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == RAW

    def test_counting_and_the_plot_read_the_stored_object(self, api, s3_bucket):
        body = upload(api)
        session = services.session_process(session_id=body["id"])  # what the worker runs
        assert session.status == SensorSession.Status.DONE, session.error
        detail = api.get(f"/api/v1/sessions/{body['id']}/").json()
        assert [s["reps"] for s in detail["sets"]] == expected_reps()
        assert sum(expected_reps()) > 0
        plot = api.get(f"/api/v1/sessions/{body['id']}/plot.png")
        assert plot.status_code == 200
        assert plot.content.startswith(b"\x89PNG")

    def test_a_refused_upload_stores_nothing(self, api, s3_bucket):
        resp = api.post(
            "/api/v1/sessions/",
            {"file": SimpleUploadedFile("bad.csv", b"time_s,acc_x\n1,2\n0,3\n"), "format": "csv"},
            format="multipart",
        )
        assert resp.status_code == 400
        assert s3_bucket.keys() == []

    def test_deleting_a_session_removes_its_object(self, api, s3_bucket, django_capture_on_commit_callbacks):
        keep, gone = upload(api), upload(api)
        with django_capture_on_commit_callbacks(execute=True):
            assert api.delete(f"/api/v1/sessions/{gone['id']}/").status_code == 204
        assert [key.rsplit("/", 1)[1] for key in s3_bucket.keys("sessions/")] == [f"{keep['id']}.csv"]

    def test_deleting_the_account_removes_its_objects(self, api, user, s3_bucket, client_for,
                                                      django_capture_on_commit_callbacks):  # fmt: skip
        someone = UserFactory()
        theirs = upload(client_for(someone))
        upload(api), upload(api)
        assert len(s3_bucket.keys(f"sessions/{user.pk}/")) == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert api.delete("/api/v1/account/").status_code == 204
        assert s3_bucket.keys() == [f"sessions/{someone.pk}/{theirs['id']}.csv"]


@pytest.mark.django_db
def test_the_orphan_sweep_removes_only_unreferenced_old_objects(api, user, s3_bucket):
    kept = upload(api)
    s3_bucket.put("sessions/999999/orphan.csv", b"time_s,acc_x\n")
    s3_bucket.put("models/not-a-session.keras", b"x")
    assert services.orphan_files_delete(min_age_s=3600) == [], "too young: an upload may be committing"
    assert services.orphan_files_delete(min_age_s=0) == ["sessions/999999/orphan.csv"]
    assert s3_bucket.keys() == ["models/not-a-session.keras", f"sessions/{user.pk}/{kept['id']}.csv"]


@pytest.mark.django_db
def test_the_orphan_sweep_honours_a_location_prefix(api, user, s3_bucket, settings):
    from fitness.core.storage import default_storage

    settings.STORAGES = {**settings.STORAGES, "default": default_storage({"STORAGE_URL": s3_bucket.url.replace(
        "?", "/tenant-a?", 1)})}  # fmt: skip
    kept = upload(api)
    s3_bucket.put("tenant-a/sessions/5/orphan.csv", b"x")
    s3_bucket.put("sessions/5/outside-the-prefix.csv", b"x")
    assert services.orphan_files_delete(min_age_s=0) == ["sessions/5/orphan.csv"]
    assert s3_bucket.keys() == ["sessions/5/outside-the-prefix.csv", f"tenant-a/sessions/{user.pk}/{kept['id']}.csv"]


@pytest.mark.e2e
def test_a_real_worker_counts_what_the_web_process_stored(transactional_db, settings, tmp_path, monkeypatch,
                                                         client_for, s3_bucket, stored_files):  # fmt: skip
    """The worker subprocess shares no folder with this process: only the bucket (STORAGE_URL)."""
    worker_media = tmp_path / "worker-media"
    with running_worker(
        settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="s3",
        env={"STORAGE_URL": s3_bucket.url, "MEDIA_ROOT": str(worker_media)},
    ) as worker:  # fmt: skip
        api = client_for(UserFactory())
        body = upload(api)
        done = wait_for_counting(api, body["id"], worker)
    assert done["status"] == "done", f"{done['error']}\n{worker.log_text()[-4000:]}"
    assert [s["reps"] for s in done["sets"]] == expected_reps()
    [key] = s3_bucket.keys()
    assert key.endswith(f"/{body['id']}.csv")
    assert s3_bucket.read(key) == RAW
    assert stored_files() == [], "the web process wrote no local file"
    assert not worker_media.exists(), "the worker wrote no local file"


@pytest.mark.django_db
def test_an_object_store_outage_requeues_the_session_and_a_retry_counts_it(api, s3_bucket, s3_endpoint, settings):
    from fitness.core.storage import StorageUnavailable, default_storage
    from fitness.workouts.tasks import process_session
    from tests.fixtures.s3 import free_port

    body = upload(api)
    working = settings.STORAGES
    down = s3_bucket.url.replace(s3_endpoint, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    settings.STORAGES = {**working, "default": default_storage({"STORAGE_URL": down})}
    with pytest.raises(StorageUnavailable):
        services.session_process(session_id=body["id"])
    session = SensorSession.objects.get(pk=body["id"])
    assert (session.status, session.attempts, session.error) == (SensorSession.Status.QUEUED, 0, "")
    assert StorageUnavailable in process_session.autoretry_for  # the task retries it with backoff

    settings.STORAGES = working  # the store is back: the retry counts it
    session = services.session_process(session_id=body["id"])
    assert session.status == SensorSession.Status.DONE, session.error
    assert session.attempts == 1
    assert [s.reps for s in session.sets.order_by("index")] == expected_reps()


def test_only_outages_of_the_store_are_transient():
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    from fitness.core.storage import is_transient_storage_error

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    assert is_transient_storage_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient_storage_error(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient_storage_error(client_error("SlowDown", 503))
    assert is_transient_storage_error(client_error("InternalError", 500))
    assert not is_transient_storage_error(client_error("NoSuchKey", 404))
    assert not is_transient_storage_error(client_error("AccessDenied", 403))
    assert not is_transient_storage_error(FileNotFoundError("sessions/1/x.csv"))
