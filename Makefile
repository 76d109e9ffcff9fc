# Commands of the README. Everything runs from the project's virtual environment.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Worker options for `make run`: no -Q, so it consumes every queue of the settings (counting, admin
# and webhooks; compose runs a worker for each). One pool process (one task at a time: a webhook
# attempt holds it for at most FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S). Prefork rather than solo:
# only a pool process can be stopped at the task time limits (the solo pool ignores them); the
# parent never loads TensorFlow, the child loads it on its first task.
WORKER_ARGS ?= --pool=prefork --concurrency=1 -l info
# Celery beat inside the worker: the periodic sweep that queues again sessions whose task was
# lost (broker down at upload, a worker killed mid-task). Empty it where a beat runs elsewhere.
BEAT_ARGS ?= -B

# The signing key of local runs (`make run`, `make migrate`; every target, benchmarks too, gets it):
# random, made once per install and kept in var/secret_key (owner-only, not in git), passed as
# DJANGO_SECRET_KEY; a DJANGO_SECRET_KEY of the environment wins. With DEBUG off the app refuses
# to start without a good key (fitness/settings.py).
SECRET_KEY_FILE ?= var/secret_key
ifndef DJANGO_SECRET_KEY
export DJANGO_SECRET_KEY := $(shell test -s '$(SECRET_KEY_FILE)' || { mkdir -p '$(dir $(SECRET_KEY_FILE))' && \
	tmp=$$(mktemp '$(SECRET_KEY_FILE).XXXXXX') && \
	python3 -c 'import secrets; print(secrets.token_urlsafe(50))' > "$$tmp" && \
	{ ln "$$tmp" '$(SECRET_KEY_FILE)' 2>/dev/null; rm -f "$$tmp"; }; }; cat '$(SECRET_KEY_FILE)')
endif

.PHONY: install run worker migrate test lint bench load hostile scale-out

install: $(STAMP)

# Re-installs only when a requirements file changed since the last install.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

# Migrations, then the shipped model registered as production if none is (idempotent).
migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py register_default_model

# API on 0.0.0.0:$PORT (default 8000) plus a Celery worker in the background, on SQLite
# and the embedded filesystem broker unless DATABASE_URL / CELERY_BROKER_URL say otherwise.
run: migrate
	@export FITNESS_WEBHOOKS_ALLOW_PRIVATE="$${FITNESS_WEBHOOKS_ALLOW_PRIVATE:-1}"; $(VENV)/bin/celery -A workers worker $(WORKER_ARGS) $(BEAT_ARGS) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver --insecure --noreload 0.0.0.0:$${PORT:-8000}

worker: migrate
	$(VENV)/bin/celery -A workers worker $(WORKER_ARGS) $(BEAT_ARGS)

# On every core (pytest-xdist): a test file runs whole in one process (its fixtures and any
# queue or folder it shares between its tests stay in that process); PYTEST_ARGS="-n 0" runs serially.
PYTEST_ARGS ?= -n auto --dist loadfile
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# All benchmarks, each merging its key into bench/results.json (the README's "Performance"):
# stats: latency (p50/p95) of the statistics and history endpoints with five years of synthetic
#   history (BENCH_ARGS="--compare": again without the statistics indexes);
# cli: cold `python -m inference count` of an Exermote session (classifier) and a rope file (generic);
# inference: counting one hour of data end to end vs the bare Keras predict over its windows;
# worker: a real Celery worker, upload -> done latency and its RSS over 100 sessions;
# api: requests/s and p95 of upload, session detail and stats under gunicorn -w 2;
# hostile: hostile uploads against gunicorn and a prefork worker (`make hostile` below; SQLite
#   and the filesystem broker unless DATABASE_URL / CELERY_BROKER_URL, as `make load`);
# scale_out: 1, 2 and 4 counting workers on Redis + PostgreSQL: sessions per minute and
#   upload -> done p50/p95; then upload -> done with an evaluation on the admin queue (`make scale-out`).
# PostgreSQL from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; throw-away
# databases beside it), Redis from BENCH_REDIS_URL (default redis://127.0.0.1:6379/13; own
# queues). A benchmark whose data (../shared/data/exermote) or servers are absent says so and
# skips. Each is interrupted (SIGINT: servers stopped, databases dropped) after BENCH_TIMEOUT
# seconds; all together take about 13 minutes.
BENCH_TIMEOUT ?= 600
BENCH_RUN = timeout -s INT -k 30 $(BENCH_TIMEOUT) $(PY)
bench: install
	$(BENCH_RUN) bench/stats_bench.py $(BENCH_ARGS)
	$(BENCH_RUN) bench/cli_bench.py
	$(BENCH_RUN) bench/inference_bench.py
	$(BENCH_RUN) bench/counter_bench.py
	$(BENCH_RUN) bench/worker_bench.py
	$(BENCH_RUN) bench/api_bench.py
	$(BENCH_RUN) bench/hostile_uploads.py
	$(BENCH_RUN) bench/scale_out.py

# Load test on loopback (bench/load_test.py; --help for its options, LOAD_ARGS passes them):
# LOAD_USERS users upload and read for LOAD_MINUTES minutes against
# gunicorn with a real worker (throw-away database beside DATABASE_URL's, or SQLite; the
# broker of CELERY_BROKER_URL on a queue of its own); then every accepted upload must be
# counted once. Prints N, M, throughput, latencies and errors; fails on any error or loss.
LOAD_USERS ?= 8
LOAD_MINUTES ?= 1
load: install
	$(PY) bench/load_test.py --users $(LOAD_USERS) --minutes $(LOAD_MINUTES) $(LOAD_ARGS)

# Fault injection on loopback (bench/hostile_uploads.py; HOSTILE_ARGS passes options, e.g.
# --no-write): an attacker uploads time gaps, float32 overflows, a 20 MB JSON bomb, a gzip bomb,
# 100,000-deep JSON and padded CSVs, 3 of each at once, while a normal user uploads a real
# Exermote session every 3 s, against gunicorn -w 2 and a prefork worker (concurrency 1) on
# load's servers (SQLite and the filesystem broker unless DATABASE_URL / CELERY_BROKER_URL).
# Fails unless every hostile upload is refused naming the problem (or ends done/failed with a
# reason), web and worker peak RSS stay under their bounds, and the normal user's p95
# upload-to-done latency under attack is at most its baseline's + 5 s. About 2.5 minutes.
hostile: install
	$(BENCH_RUN) bench/hostile_uploads.py $(HOSTILE_ARGS)

# Scale-out on loopback (bench/scale_out.py; SCALE_ARGS passes options, e.g. --no-write):
# a burst of real 5-minute Exermote uploads through gunicorn to 1, 2 and 4 counting worker
# processes on Redis and a throw-away PostgreSQL database; prints sessions per minute and
# upload -> done p50/p95 for each, then upload -> done p50 on a warm worker while an
# evaluation runs on the admin queue (goal <= 150 ms). About 3 minutes.
scale-out: install
	$(BENCH_RUN) bench/scale_out.py $(SCALE_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
