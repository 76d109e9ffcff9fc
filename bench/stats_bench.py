"""Latency of the statistics and history endpoints on PostgreSQL with five years of history.

    make bench                 # or: .venv/bin/python bench/stats_bench.py [--requests 200]

A synthetic athlete with five years of training (about 20,000 sets and 100,000
repetitions, time zone Europe/Berlin) plus other athletes with as much history
(so that every query has to find one user's rows among many) is written with COPY
into a fresh database next to the one ``DATABASE_URL`` names (default
``postgres://postgres@127.0.0.1:5432/test``), which is dropped afterwards. Each
endpoint is then requested in-process through the whole Django stack (URL routing,
JWT authentication, the view, the database, JSON rendering; no HTTP server) and
p50/p95 latencies are printed and merged into ``bench/results.json`` under ``"stats"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
import zoneinfo
from pathlib import Path

import benchlib
from benchlib import log, with_database

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
GOAL_P95_MS = 50.0
BENCH_TZ = "Europe/Berlin"
YEARS = 5
SESSIONS_PER_USER = 2000  # on ~1,000 training days
SETS_PER_SESSION = 10  # 20,000 sets
#: (exercise, share of sets, repetitions per set low..high, seconds per repetition)
EXERCISE_MIX = (
    ("squat", 0.30, (1, 7), 2.2),
    ("sit_up", 0.25, (1, 7), 2.5),
    ("burpee", 0.20, (1, 7), 3.5),
    ("jumping_jack", 0.15, (1, 7), 1.2),
    ("jump_rope", 0.10, (5, 25), 0.45),
)


# --- Synthetic history ----------------------------------------------------------------


def synthetic_history(rng: random.Random, user_id: int, now: dt.datetime, first_ids: dict[str, int]) -> dict:
    """Rows (dicts by column) of one athlete: sessions, sets and repetitions over ``YEARS`` years."""
    tz = zoneinfo.ZoneInfo(BENCH_TZ)
    start_day = (now - dt.timedelta(days=365 * YEARS)).astimezone(tz).date()
    n_days = (now.astimezone(tz).date() - start_day).days
    training_days = sorted(rng.sample(range(n_days), SESSIONS_PER_USER // 2))
    exercises = [e[0] for e in EXERCISE_MIX]
    weights = [e[1] for e in EXERCISE_MIX]
    spec = {e[0]: e for e in EXERCISE_MIX}
    sessions, sets, reps = [], [], []
    set_id, rep_id = first_ids["set"], first_ids["rep"]
    for offset in training_days:
        day = start_day + dt.timedelta(days=offset)
        for hour in sorted(rng.sample(range(6, 22), 2)):
            created = dt.datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=tz)
            session_id = uuid.uuid4()
            clock, total = rng.uniform(5, 30), 0
            for index in range(SETS_PER_SESSION):
                exercise = rng.choices(exercises, weights)[0]
                _, _, (low, high), per_rep = spec[exercise]
                n = rng.randint(low, high)
                pace = per_rep * rng.uniform(0.8, 1.25)
                start = round(clock, 3)
                end = round(start + n * pace, 3)
                sets.append(
                    {
                        "id": set_id,
                        "session_id": session_id,
                        "user_id": user_id,
                        "index": index,
                        "exercise": exercise,
                        "method": "peaks" if exercise == "jump_rope" else "classifier",
                        "reps": n,
                        "start_s": start,
                        "end_s": end,
                        "performed_at": created + dt.timedelta(seconds=start),
                    }
                )
                for k in range(n):
                    reps.append(
                        {
                            "id": rep_id,
                            "set_id": set_id,
                            "index": k,
                            "start_s": round(start + k * pace, 3),
                            "end_s": round(start + (k + 0.9) * pace, 3),
                        }
                    )
                    rep_id += 1
                set_id += 1
                total += n
                clock = end + rng.uniform(45, 120)
            sessions.append(
                {
                    "id": session_id,
                    "user_id": user_id,
                    "file": f"sessions/{user_id}/{session_id}.csv",
                    "format": "csv",
                    "status": "done",
                    "model_version": "bench-1",
                    "total_reps": total,
                    "n_samples": int(clock * 50),
                    "duration_s": round(clock, 3),
                    "sample_rate_hz": 50.0,
                    "channels": json.dumps(["acc_x", "acc_y", "acc_z"]),
                    "created_at": created,
                    "started_at": created,
                    "processing_started_at": created + dt.timedelta(seconds=clock + 5),
                    "finished_at": created + dt.timedelta(seconds=clock + 9),
                }
            )
    # A few uploads that failed or are still queued: no sets, must not count.
    for status in ("failed", "failed", "queued"):
        created = now - dt.timedelta(days=rng.randrange(1, 365 * YEARS))
        sessions.append(
            {**sessions[-1], "id": uuid.uuid4(), "status": status, "total_reps": None, "created_at": created}
        )
    first_ids["set"], first_ids["rep"] = set_id, rep_id
    return {"sessions": sessions, "sets": sets, "reps": reps}


def copy_rows(cursor, model, rows: list[dict]) -> None:
    """COPY ``rows`` into ``model``'s table; columns the rows leave out get the model field's default."""
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    defaults = {}
    for f in fields:
        if f.has_default():
            default = f.get_default()
            defaults[f.column] = json.dumps(default) if isinstance(default, list | dict) else default
        else:
            defaults[f.column] = None
    with cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row.get(f.attname, row.get(f.column, defaults[f.column])) for f in fields])


def load_history(*, other_users: int, seed: int) -> tuple[object, dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from fitness.workouts.models import ExerciseSet, Repetition, SensorSession

    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    user_model = get_user_model()
    now = timezone.now()
    athlete = user_model.objects.create_user(username="bench-athlete", password=None, time_zone=BENCH_TZ)
    users = [athlete] + [
        user_model.objects.create_user(username=f"bench-other-{i}", password=None) for i in range(other_users)
    ]
    ids = {"set": 1, "rep": 1}
    counts = {}
    started = time.perf_counter()
    with transaction.atomic():
        raw = connection.connection.cursor()
        for user in users:
            history = synthetic_history(rng, user.pk, now, ids)
            copy_rows(raw, SensorSession, history["sessions"])
            copy_rows(raw, ExerciseSet, history["sets"])
            copy_rows(raw, Repetition, history["reps"])
            if user is athlete:
                counts = {
                    "sessions": len(history["sessions"]),
                    "sets": len(history["sets"]),
                    "repetitions": len(history["reps"]),
                }
        for model in (ExerciseSet, Repetition):
            table = model._meta.db_table
            # Table names come from the models, not from input.
            raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM \"{table}\"))")  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    counts["load_s"] = round(time.perf_counter() - started, 1)
    counts["all_users_sets"] = ExerciseSet.objects.count()
    counts["all_users_repetitions"] = Repetition.objects.count()
    return athlete, counts


# --- Measurement ------------------------------------------------------------------------


#: ``--compare``: the same queries on the indexes the tables had before the statistics
#: work (a foreign-key index on ``user`` and one on ``(user, exercise)``).
WITHOUT_STATS_INDEXES_SQL = (
    "DROP INDEX set_user_time_idx",
    "DROP INDEX set_user_exercise_idx",
    "DROP INDEX set_user_exercise_reps_idx",
    "DROP INDEX session_user_not_done_idx",
    'CREATE INDEX bench_set_user_idx ON "workouts_exerciseset" ("user_id")',
    'CREATE INDEX bench_set_user_exercise_idx ON "workouts_exerciseset" ("user_id", "exercise")',
    "VACUUM ANALYZE",
)


def drop_stats_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in WITHOUT_STATS_INDEXES_SQL:
            cursor.execute(statement)


def endpoints(today: dt.date) -> list[tuple[str, str]]:
    five_years = (today - dt.timedelta(days=365 * YEARS)).isoformat()
    one_year = (today - dt.timedelta(days=365)).isoformat()
    return [
        ("stats/exercises (all time)", "/api/v1/stats/exercises/"),
        ("stats/exercises (last 365 days)", f"/api/v1/stats/exercises/?from={one_year}"),
        ("stats/timeseries day (30 days)", "/api/v1/stats/timeseries/?period=day"),
        ("stats/timeseries week (5 years)", f"/api/v1/stats/timeseries/?period=week&from={five_years}"),
        ("stats/timeseries month (5 years)", f"/api/v1/stats/timeseries/?period=month&from={five_years}"),
        ("stats/timeseries day (5 years, squat)", f"/api/v1/stats/timeseries/?from={five_years}&exercise=squat"),
        ("stats/records", "/api/v1/stats/records/"),
        ("stats/streaks", "/api/v1/stats/streaks/"),
        ("sets (first page of 100)", "/api/v1/sets/"),
        ("sets (100, from a year ago, squat)", f"/api/v1/sets/?from={one_year}&exercise=squat"),
        ("repetitions (first page of 100)", "/api/v1/repetitions/"),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def measure(athlete, *, requests: int, warmup: int) -> dict[str, dict]:
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from fitness.stats.selectors import local_today

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(athlete).access_token}")
    results = {}
    for name, url in endpoints(local_today(tz=athlete.tzinfo)):
        for _ in range(warmup):
            assert client.get(url).status_code == 200, url
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            resp = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200, (url, resp.status_code)
        results[name] = {
            "url": url,
            "p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(percentile(timings, 0.95), 2),
            "max_ms": round(max(timings), 2),
            "requests": requests,
            "bytes": len(resp.content),
        }
        log(f"  {name}: p50 {results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms")
    return results


def explain(athlete) -> None:
    """Print the plan (EXPLAIN ANALYZE) of every query each endpoint runs: for index design."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from fitness.stats.selectors import local_today

    client = APIClient()
    client.force_authenticate(athlete)
    for name, url in endpoints(local_today(tz=athlete.tzinfo)):
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or "accounts_user" in sql.split("WHERE")[0]:
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            log(f"--- {name}\n{sql}\n{plan}\n")


def print_table(results: dict[str, dict], without: dict[str, dict] | None = None) -> None:
    width = max(len(name) for name in results)
    header = f"{'endpoint':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'goal':>6}"
    if without:
        header += f"  {'p50 w/o idx':>12}  {'p95 w/o idx':>12}"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        ok = "ok" if r["p95_ms"] <= GOAL_P95_MS else "MISS"
        line = f"{name:<{width}}  {r['p50_ms']:>8.1f}  {r['p95_ms']:>8.1f}  {ok:>6}"
        if without:
            line += f"  {without[name]['p50_ms']:>12.1f}  {without[name]['p95_ms']:>12.1f}"
        lines.append(line)
    print("\n".join(lines))  # noqa: T201 - the benchmark's report


def write_results(payload: dict) -> None:
    """Merge into ``bench/results.json``: other benchmarks keep their keys."""
    existing = {}
    if RESULTS.exists():
        try:
            existing = json.loads(RESULTS.read_text())
        except json.JSONDecodeError:
            log(f"{RESULTS} is not valid JSON; starting it again")
    existing["stats"] = payload
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per endpoint first")
    parser.add_argument("--other-users", type=int, default=4, help="other athletes with as much history")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--explain", action="store_true", help="print the query plans too")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.json")
    parser.add_argument(
        "--compare", action="store_true", help="then measure again without the statistics indexes (for the README)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, bench_db: str) -> dict:
    """Migrate the fresh database, load the history, measure; returns the results' payload."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    log(f"database {bench_db}: loading {1 + args.other_users} athletes with {YEARS} years of history each ...")
    athlete, counts = load_history(other_users=args.other_users, seed=args.seed)
    log(f"  {counts}")
    results = measure(athlete, requests=args.requests, warmup=args.warmup)
    if args.explain:
        explain(athlete)
    without = None
    if args.compare:
        log("without the statistics indexes:")
        drop_stats_indexes()
        without = measure(athlete, requests=args.requests, warmup=args.warmup)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    return {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": server_version},
        "dataset": {"athlete": counts, "other_users": args.other_users, "years": YEARS, "time_zone": BENCH_TZ},
        "goal_p95_ms": GOAL_P95_MS,
        "method": "in-process Django test client, JWT auth, full view + JSON rendering; "
        f"{args.warmup} warm-up then {args.requests} timed requests per endpoint",
        "endpoints": results,
        **({"endpoints_without_stats_indexes": without} if without else {}),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not base_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        log(f"the benchmark needs PostgreSQL; DATABASE_URL is {base_url!r}")
        return 2
    bench_db = f"fitness_bench_{os.getpid()}"
    with benchlib.admin_connection(base_url) as admin:
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = with_database(base_url, bench_db)
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fitness.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    try:
        payload = run(args, bench_db)
    finally:
        from django.db import connections

        connections.close_all()
        with benchlib.admin_connection(base_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')

    print_table(payload["endpoints"], payload.get("endpoints_without_stats_indexes"))
    if not args.no_write:
        write_results(payload)
        log(f"results merged into {RESULTS}")
    missed = [name for name, r in payload["endpoints"].items() if r["p95_ms"] > GOAL_P95_MS]
    if missed:
        log(f"p95 above the {GOAL_P95_MS:.0f} ms goal: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
