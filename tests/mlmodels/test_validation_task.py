"""An upload's full check on the admin queue (fitness/mlmodels/services/validation.py): the
request runs only the cheap checks and answers 202 ``pending``; a worker builds the network,
dry-runs it, counts a synthetic recording and exports it, then the version is ``valid`` or
``invalid`` with the reason. Only a valid version may be activated or staged."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from fitness.mlmodels import services
from fitness.mlmodels.models import ModelVersion, Stage, ValidationStatus
from tests.factories import UserFactory
from tests.fixtures.celery_worker import REPO, database_url, running_worker

# The model check itself is under test: every check runs its child (no result reused).
pytestmark = pytest.mark.real_model_check


URL = "/api/v1/model-versions/"


def upload(client, model):
    return client.post(URL, {"file": SimpleUploadedFile("model.keras", model.data)}, format="multipart")


@pytest.mark.django_db
class TestTheTask:
    def test_a_pending_version_cannot_be_activated_or_staged_until_its_check_says_valid(
        self, staff_api, model_files, register
    ):
        production = register(model_files["b"], stage="production")
        resp = upload(staff_api, model_files["a"])
        assert resp.status_code == 202, resp.content
        pk = resp.json()["id"]
        refused = staff_api.post(f"{URL}{pk}/activate/", format="json")
        assert refused.status_code == 400
        assert "not validated yet (validation_status pending)" in refused.json()["detail"]
        staged = staff_api.post(f"{URL}{pk}/stage/", {"stage": "staging"}, format="json")
        assert staged.status_code == 400
        assert "not validated yet" in staged.json()["stage"][0]
        assert ModelVersion.objects.get(pk=pk).stage == Stage.NONE
        assert ModelVersion.objects.get(stage=Stage.PRODUCTION) == production

        version = services.model_version_validate(version_id=pk)

        assert (version.validation_status, version.validation_error) == ("valid", "")
        assert version.runtime_status == "ready"  # the export came with the check
        assert staff_api.post(f"{URL}{pk}/activate/", format="json").status_code == 200
        assert ModelVersion.objects.get(stage=Stage.PRODUCTION).pk == pk

    def test_a_network_that_disagrees_with_its_metadata_ends_invalid_with_the_reason(
        self, staff_api, model_files, stored_files
    ):
        # The network expects 8-sample windows, its metadata says 40: only building it tells.
        resp = upload(staff_api, model_files["shape_mismatch"])
        assert resp.status_code == 202, resp.content
        pk = resp.json()["id"]

        services.model_version_validate(version_id=pk)

        body = staff_api.get(f"{URL}{pk}/").json()
        assert body["validation_status"] == "invalid"
        assert "network input" in body["validation_error"]
        assert body["runtime_status"] == "pending"  # no export of an invalid file
        assert [p.suffix for p in stored_files()] == [".keras"]
        refused = staff_api.post(f"{URL}{pk}/activate/", format="json")
        assert refused.status_code == 400
        assert "is invalid: " in refused.json()["detail"]
        assert "network input" in refused.json()["detail"]

    def test_when_only_the_export_fails_the_version_is_valid_and_the_export_failed(
        self, staff_api, model_files, monkeypatch, tmp_path
    ):
        # The converter writes something ONNX Runtime refuses, in the check's child process.
        (tmp_path / "sitecustomize.py").write_text(
            "import inference.export\n"
            "inference.export._convert = lambda network, spec, path, opset: path.write_bytes(b'no')\n"
        )
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))
        pk = upload(staff_api, model_files["a"]).json()["id"]

        services.model_version_validate(version_id=pk)

        body = staff_api.get(f"{URL}{pk}/").json()
        assert (body["validation_status"], body["validation_error"]) == ("valid", "")
        assert body["runtime_status"] == "failed"
        assert "ONNX Runtime cannot load the export" in body["runtime_error"]
        assert staff_api.post(f"{URL}{pk}/activate/", format="json").status_code == 200  # the .keras counts

    def test_a_second_run_of_a_checked_version_does_nothing(self, staff_api, model_files, monkeypatch):
        pk = upload(staff_api, model_files["a"]).json()["id"]
        services.model_version_validate(version_id=pk)
        before = ModelVersion.objects.filter(pk=pk).values()[0]

        def no_check(*args, **kwargs):
            raise AssertionError("a checked version was checked again")

        monkeypatch.setattr(services.validation, "check_registered_file", no_check)
        assert services.model_version_validate(version_id=pk).validation_status == ValidationStatus.VALID
        assert ModelVersion.objects.filter(pk=pk).values()[0] == before
        assert services.model_version_validate(version_id=123456) is None

    def test_a_missing_keras_is_invalid_with_the_reason(self, staff_api, model_files):
        pk = upload(staff_api, model_files["a"]).json()["id"]
        version = ModelVersion.objects.get(pk=pk)
        version.file.delete(save=False)
        version = services.model_version_validate(version_id=pk)
        assert (version.validation_status, version.validation_error) == ("invalid", "the stored .keras is missing")


# A web process of its own: Django, the API, one upload through the test client, then what it imported.
_WEB_PROCESS = """
import json, sys
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from fitness.accounts.models import User

client = APIClient()
client.force_authenticate(User.objects.get(pk=int(sys.argv[1])))
answers = []
for path in sys.argv[2:]:
    with open(path, "rb") as fh:
        body = {"file": SimpleUploadedFile("m.keras", fh.read())}
    resp = client.post("/api/v1/model-versions/", body, format="multipart")
    answers.append([resp.status_code, resp.json()])
heavy = sorted(m for m in ("tensorflow", "keras", "onnxruntime", "tf2onnx") if m in sys.modules)
# VmHWM, not ru_maxrss: the latter keeps the forking test process's peak across exec.
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
peak_mib = int(status["VmHWM"].split()[0]) / 1024
print(json.dumps({"answers": answers, "heavy": heavy, "peak_rss_mib": peak_mib}))
"""


@pytest.mark.e2e
def test_the_web_process_never_imports_tensorflow_and_a_real_worker_puts_the_result_on_the_version(
    transactional_db, settings, tmp_path, monkeypatch, model_files, staff_api
):
    staff = UserFactory(is_staff=True)
    with running_worker(settings=settings, tmp_path=tmp_path, monkeypatch=monkeypatch, prefix="validate") as worker:
        queues = worker.args[worker.args.index("-Q") + 1].split(",")
        env = {
            **worker_env(settings),
            "CELERY_COUNTING_QUEUE": queues[0],
            "CELERY_ADMIN_QUEUE": queues[1],
            "CELERY_WEBHOOKS_QUEUE": queues[2],
        }
        web = subprocess.run(
            [sys.executable, "-c", _WEB_PROCESS, str(staff.pk), str(model_files["a"].path),
             str(model_files["shape_mismatch"].path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert web.returncode == 0, web.stderr[-4000:]
        out = json.loads(web.stdout.strip().splitlines()[-1])
        assert out["heavy"] == [], f"the web process imported {out['heavy']}"
        # The bound for a web process after an upload (measured: about 200 MiB; TensorFlow alone adds more).
        assert out["peak_rss_mib"] < 300
        assert [(code, body["validation_status"]) for code, body in out["answers"]] == [
            (202, "pending"),
            (202, "pending"),
        ]
        valid_pk, invalid_pk = (body["id"] for _, body in out["answers"])

        deadline = time.monotonic() + 300
        while ModelVersion.objects.filter(pk__in=[valid_pk, invalid_pk], validation_status="pending").exists():
            if worker.poll() is not None:
                pytest.fail(f"the worker died ({worker.returncode}):\n{worker.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the versions are still pending after 300 s:\n{worker.log_text()[-4000:]}")
            time.sleep(0.5)

    valid = staff_api.get(f"{URL}{valid_pk}/").json()
    assert (valid["validation_status"], valid["runtime_status"]) == ("valid", "ready")
    invalid = staff_api.get(f"{URL}{invalid_pk}/").json()
    assert invalid["validation_status"] == "invalid"
    assert "network input" in invalid["validation_error"]


def worker_env(settings) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fitness.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
