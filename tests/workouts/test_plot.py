"""``GET /sessions/{id}/plot.png`` and ``GET /sessions/{id}/recording/``."""

import io

import numpy as np
import pytest
from django.core.cache import cache
from PIL import Image

from fitness.workouts import plots, services
from fitness.workouts.models import SensorSession
from fitness.workouts.plots import render_session_plot
from inference.io import Recording
from tests.factories import SensorSessionFactory, canonical_csv, count_result, counted_session

pytestmark = pytest.mark.django_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def plot_url(session) -> str:
    return f"/api/v1/sessions/{session.pk}/plot.png"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    return Image.open(io.BytesIO(data)).size


class TestPlot:
    def test_png_of_a_counted_session(self, api, user):
        session = counted_session(user, [("squat", 3, 1.0)])
        resp = api.get(plot_url(session))
        assert resp.status_code == 200
        assert resp["Content-Type"] == "image/png"
        width, height = png_size(resp.content)
        assert width > 600
        assert height > 200
        # Clients that ask for the image explicitly get it too.
        assert api.get(plot_url(session), HTTP_ACCEPT="image/png").status_code == 200

    def test_cached_until_the_session_is_counted_again(self, api, user):
        session = counted_session(user, [("squat", 3, 1.0)])
        first = api.get(plot_url(session)).content
        # Without the recording, only the cache can answer.
        session.file.storage.delete(session.file.name)
        assert api.get(plot_url(session)).content == first
        # A new count (what a reprocess ends in) must not be answered from the old plot.
        services.session_save_result(session_id=session.pk, result=count_result([("squat", 2, 1.0)]))
        resp = api.get(plot_url(session))
        assert resp.status_code == 404
        assert "recording" in resp.json()["detail"]

    def test_a_correction_changes_the_plot(self, api, user, monkeypatch):
        """Issue 29, item 10: the plot stayed byte-identical, titled with the old total."""
        titles: list[str] = []

        def render(*, title: str, **kwargs) -> bytes:
            titles.append(title)
            return render_session_plot(title=title, **kwargs)

        monkeypatch.setattr(plots, "render_session_plot", render)
        session = counted_session(user, [("squat", 3, 1.0), ("squat", 2, 20.0)])
        SensorSession.objects.filter(pk=session.pk).update(duration_s=60.0)  # room for an added set
        first = api.get(plot_url(session)).content
        assert api.get(plot_url(session)).content == first  # cached: drawn once
        assert [t.split(" (model")[0] for t in titles] == ["5 repetitions in 2 set(s)"]

        one = session.sets.order_by("index").first()
        assert api.patch(f"/api/v1/sets/{one.pk}/", {"reps": 4}, format="json").status_code == 200
        corrected = api.get(plot_url(session)).content
        assert corrected != first
        assert titles[-1].startswith("6 repetitions in 2 set(s)")

        added = {"exercise": "burpee", "reps": 3, "start_s": 40.0, "end_s": 45.0}
        assert api.post(f"/api/v1/sessions/{session.pk}/sets/", added, format="json").status_code == 201
        assert api.get(plot_url(session)).content not in (first, corrected)
        assert titles[-1].startswith("9 repetitions in 3 set(s)")
        assert len(titles) == 3

    def test_deleting_the_session_forgets_its_plot(self, api, user, django_capture_on_commit_callbacks):
        session = counted_session(user, [("squat", 3, 1.0)])
        assert api.get(plot_url(session)).status_code == 200
        assert len(cache._cache) == 1  # LocMemCache: the one plot
        with django_capture_on_commit_callbacks(execute=True):
            assert api.delete(f"/api/v1/sessions/{session.pk}/").status_code == 204
        assert len(cache._cache) == 0
        assert api.get(plot_url(session)).status_code == 404

    @pytest.mark.parametrize("status", [SensorSession.Status.QUEUED, SensorSession.Status.PROCESSING])
    def test_not_counted_yet_is_409(self, api, user, status):
        session = SensorSessionFactory(user=user, status=status)
        resp = api.get(plot_url(session), HTTP_ACCEPT="image/png")
        assert resp.status_code == 409
        assert resp["Content-Type"] == "application/json"
        assert resp.json()["status"] == status

    def test_failed_is_409(self, api, user):
        session = SensorSessionFactory(user=user)
        services.session_mark_failed(session_id=session.pk, error="too short")
        assert api.get(plot_url(session)).status_code == 409

    def test_other_users_and_anonymous(self, api, other_user, anon_client):
        session = counted_session(other_user, [("squat", 3, 1.0)])
        assert api.get(plot_url(session)).status_code == 404
        assert anon_client.get(plot_url(session)).status_code == 401
        assert api.get("/api/v1/sessions/00000000-0000-0000-0000-000000000000/plot.png").status_code == 404

    def test_render_marks_labelled_phases(self):
        n = 200
        time_s = np.arange(n) / 20.0
        samples = np.stack([np.sin(time_s * 3), np.cos(time_s * 3), np.full(n, 0.2)], axis=1).astype(np.float32)
        labels = np.array(["break"] * 40 + ["squat.first_half", "squat.second_half"] * 60 + ["break"] * 40)
        recording = Recording(
            time_s=time_s,
            samples=samples,
            channels=("gravity_x", "gravity_y", "gyro_z"),
            source_format="exermote",
            labels=labels,
        )
        with_phases = render_session_plot(recording=recording, sets=[], title="t")
        plain = render_session_plot(
            recording=Recording(time_s=time_s, samples=samples, channels=recording.channels, source_format="csv"),
            sets=[],
            title="t",
        )
        # Two unit panels (g, rad/s), plus the phase strip where labels exist.
        assert png_size(with_phases)[1] > png_size(plain)[1]


class TestRecordingDownload:
    def test_owner_downloads_the_raw_upload(self, api, other_api, user):
        session = counted_session(user, [("squat", 3, 1.0)])
        resp = api.get(f"/api/v1/sessions/{session.pk}/recording/")
        assert resp.status_code == 200
        assert b"".join(resp.streaming_content) == canonical_csv()
        assert resp["Content-Type"].startswith("text/csv")
        assert f'filename="{session.pk}.csv"' in resp["Content-Disposition"]
        assert other_api.get(f"/api/v1/sessions/{session.pk}/recording/").status_code == 404
