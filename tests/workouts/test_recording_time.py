"""Recording time (issue 22): sessions and sets are dated when they were recorded, not uploaded.

``started_at`` from the upload wins; else the recording's own clock (Exermote ``timeStampSaved``
in the profile time zone, CaRa Unix ms, the canonical ``start_time``); else the upload time.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fitness.workouts import services, tasks
from fitness.workouts.models import SensorSession
from tests.factories import canonical_csv, count_result

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/sessions/"
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: Recorded 2017-03-30 18:45:36.794 (phone's local time) to 18:50:36.683; 3000 rows at 10 Hz.
EXERMOTE_MARCH = DATA / "exermote" / "2017-03-30_18-50-49_individual-1.csv"
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(tasks.process_session, "delay", sent.append)
    return sent


@pytest.fixture
def exermote_march() -> bytes:
    if not EXERMOTE_MARCH.is_file():
        pytest.skip(f"real Exermote recording not found at {EXERMOTE_MARCH} (../shared is absent)")
    return EXERMOTE_MARCH.read_bytes()


def berlin_user(user):
    user.time_zone = "Europe/Berlin"
    user.save(update_fields=["time_zone"])
    return user


def post(api, data: bytes, fmt: str, name: str = "rec.csv", **fields):
    upload = SimpleUploadedFile(name, data, content_type="text/csv")
    return api.post(SESSIONS, {"file": upload, "format": fmt, **fields}, format="multipart")


class TestExermoteClock:
    def test_2017_recording_counted_by_the_worker_shows_in_march_2017(self, api, user, exermote_march):
        berlin_user(user)
        resp = post(api, exermote_march, "exermote")
        assert resp.status_code == 202, resp.content
        session_id = resp.json()["id"]
        # timeStampSaved of the first row, read in the profile's zone (CEST, UTC+2, on 30 March 2017).
        recorded = dt.datetime(2017, 3, 30, 18, 45, 36, 794000, tzinfo=BERLIN)
        assert parse_datetime(resp.json()["started_at"]) == recorded

        services.session_process(session_id=session_id)  # what the worker runs
        detail = api.get(f"{SESSIONS}{session_id}/").json()
        assert detail["status"] == "done", detail
        assert detail["total_reps"] > 0
        for counted in detail["sets"]:
            assert parse_datetime(counted["started_at"]) == recorded + dt.timedelta(seconds=counted["start_s"])

        march = api.get("/api/v1/stats/exercises/", {"from": "2017-03-01", "to": "2017-03-31"}).json()
        assert sum(row["total_reps"] for row in march) == detail["total_reps"]
        assert sum(row["sets"] for row in march) == len(detail["sets"])
        assert all(parse_datetime(row["first_performed_at"]) >= recorded for row in march)
        assert api.get("/api/v1/stats/exercises/", {"from": "2017-04-01"}).json() == []
        assert api.get("/api/v1/stats/exercises/", {"to": "2017-03-29"}).json() == []

        series = api.get(
            "/api/v1/stats/timeseries/", {"period": "day", "from": "2017-03-29", "to": "2017-03-31"}
        ).json()["results"]
        assert [(r["start"], r["reps"]) for r in series] == [
            ("2017-03-29", 0),
            ("2017-03-30", detail["total_reps"]),
            ("2017-03-31", 0),
        ]
        history = api.get("/api/v1/sets/", {"from": "2017-03-30", "to": "2017-03-30"}).json()["results"]
        assert sorted(item["start_s"] for item in history) == sorted(s["start_s"] for s in detail["sets"])
        assert all(item["started_at"].startswith("2017-03-30T1") for item in history)
        streaks = api.get("/api/v1/stats/streaks/").json()
        assert (streaks["days"]["total"], streaks["days"]["last"]) == (1, "2017-03-30")
        records = api.get("/api/v1/stats/records/").json()
        assert records
        assert all(r["performed_at"].startswith("2017-03-30") for r in records)

    def test_wall_clock_is_read_in_the_profile_time_zone(self, api, user, exermote_march):
        user.time_zone = "America/New_York"
        user.save(update_fields=["time_zone"])
        resp = post(api, exermote_march, "exermote")
        expected = dt.datetime(2017, 3, 30, 18, 45, 36, 794000, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
        assert parse_datetime(resp.json()["started_at"]) == expected

    def test_explicit_started_at_wins_over_the_file(self, api, user, exermote_march):
        berlin_user(user)
        resp = post(api, exermote_march, "exermote", started_at="2024-05-01T18:30:00+02:00")
        assert resp.status_code == 202, resp.content
        session = SensorSession.objects.get(pk=resp.json()["id"])
        assert session.started_at == dt.datetime(2024, 5, 1, 16, 30, tzinfo=dt.UTC)
        services.session_save_result(session_id=session.pk, result=count_result([("squat", 4, 12.5)]))
        [counted] = api.get("/api/v1/sets/").json()["results"]
        assert parse_datetime(counted["started_at"]) == dt.datetime(2024, 5, 1, 16, 30, 12, 500000, tzinfo=dt.UTC)
        assert counted["performed_at"] == counted["started_at"]
        assert api.get("/api/v1/stats/exercises/", {"from": "2017-03-01", "to": "2017-03-31"}).json() == []
        assert [r["total_reps"] for r in api.get("/api/v1/stats/exercises/", {"from": "2024-05-01"}).json()] == [4]


class TestOtherClocks:
    def test_file_without_a_clock_is_dated_by_the_upload(self, api):
        before = timezone.now()
        resp = post(api, canonical_csv(), "csv")
        after = timezone.now()
        assert resp.status_code == 202, resp.content
        session = SensorSession.objects.get(pk=resp.json()["id"])
        assert before <= session.started_at <= after
        assert session.started_at == session.queued_at
        assert session.processing_started_at is None

    def test_canonical_csv_start_time_line(self, api):
        data = b"# start_time=2023-11-05T07:15:00-05:00\r\n" + canonical_csv()
        resp = post(api, data, "csv")
        assert resp.status_code == 202, resp.content
        assert parse_datetime(resp.json()["started_at"]) == dt.datetime(2023, 11, 5, 12, 15, tzinfo=dt.UTC)
        assert resp.json()["n_samples"] == 100

    def test_canonical_json_start_time(self, api):
        doc = {
            "start_time": "2022-01-02T03:04:05.5Z",
            "sample_rate_hz": 10.0,
            "channels": ["acc_x", "acc_y", "acc_z"],
            "samples": [[0.1 * (i % 7), 0.0, 9.81] for i in range(100)],
        }
        resp = post(api, json.dumps(doc).encode(), "json", name="rec.json")
        assert resp.status_code == 202, resp.content
        assert parse_datetime(resp.json()["started_at"]) == dt.datetime(2022, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC)

    def test_cara_unix_ms(self, api):
        files = sorted((DATA / "cara").glob("Jumpingjack/P1/session-1/*.csv"))
        if not files:
            pytest.skip(f"real CaRa recordings not found at {DATA / 'cara'} (../shared is absent)")
        raw = files[0].read_bytes()
        first_ms = int(float(raw.split(b",", 1)[0]))
        resp = post(api, raw, "cara", exercise="jumping_jack")
        assert resp.status_code == 202, resp.content
        started = parse_datetime(resp.json()["started_at"])
        assert started.timestamp() * 1000 == pytest.approx(first_ms, abs=1)
        assert started.year >= 2020

    def test_a_clock_no_recording_could_have_is_ignored(self, api):
        # Unix ms from 0: the 1970 epoch is no recording time; the session is dated by its upload.
        rows = [f"{10 * i},0.1,0.2,{9.8 + 0.1 * (i % 5):.2f},0.0,0.0,0.0" for i in range(500)]
        before = timezone.now()
        resp = post(api, "\n".join(rows).encode(), "cara", exercise="jumping_jack")
        assert resp.status_code == 202, resp.content
        assert parse_datetime(resp.json()["started_at"]) >= before


class TestRefused:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("2024-05-01T18:30:00", "UTC offset"),
            ("1999-12-31T23:59:59Z", "before 2000"),
            ("yesterday", "ISO 8601"),
            ("0001-01-01T00:00:00+23:59", "before 2000"),
            # issue 29, item 12: was "must not be before 2000"
            ("9999-12-31T23:59:59-14:00", "must not be in the future"),
            ("9999-12-31T23:59:59-14:00", "beyond the last supported date"),
            ("9999-12-31T23:59:59+14:00", "must not be in the future"),
        ],
    )
    def test_bad_started_at_is_400_naming_it(self, api, value, message, stored_files):
        resp = post(api, canonical_csv(), "csv", started_at=value)
        assert resp.status_code == 400
        assert message in " ".join(resp.json()["started_at"])
        assert not SensorSession.objects.exists()
        assert stored_files() == []

    def test_future_started_at_is_400_beyond_the_clock_skew(self, api):
        soon = (timezone.now() + dt.timedelta(minutes=2)).isoformat()
        later = (timezone.now() + dt.timedelta(minutes=10)).isoformat()
        assert post(api, canonical_csv(), "csv", started_at=soon).status_code == 202
        resp = post(api, canonical_csv(), "csv", started_at=later)
        assert resp.status_code == 400
        assert "future" in resp.json()["started_at"][0]

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b"# start_time=2024-05-01T18:30:00\n", "UTC offset"),
            (b"# start_time=1980-05-01T18:30:00Z\n", "before 2000"),
            (b"# start_time=soon\n", "ISO 8601"),
        ],
    )
    def test_bad_start_time_in_the_file_is_400_naming_file(self, api, line, message, stored_files):
        resp = post(api, line + canonical_csv(), "csv")
        assert resp.status_code == 400
        assert message in resp.json()["file"][0]
        assert "start_time" in resp.json()["file"][0]
        assert stored_files() == []

    def test_json_start_time_must_be_a_string(self, api):
        doc = {"start_time": 1714580000, "sample_rate_hz": 10.0, "channels": ["acc_x"], "samples": [[0.1]] * 100}
        resp = post(api, json.dumps(doc).encode(), "json", name="rec.json")
        assert resp.status_code == 400
        assert "'start_time' must be an ISO 8601 date-time string" in resp.json()["file"][0]

    def test_retry_with_client_id_keeps_the_first_time(self, api):
        first = post(api, canonical_csv(), "csv", client_id="6f1c0f4e-8a7e-4d1b-9f53-2b1d7a0c9e11")
        again = post(
            api,
            canonical_csv(),
            "csv",
            client_id="6f1c0f4e-8a7e-4d1b-9f53-2b1d7a0c9e11",
            started_at="2024-05-01T00:00Z",
        )
        assert again.status_code == 200
        assert again.json()["started_at"] == first.json()["started_at"]
