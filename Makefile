# Commands of the README. Everything runs from the project's virtual environment.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Worker options for `make run` (solo pool: one task at a time, no fork with TensorFlow loaded).
WORKER_ARGS ?= --pool=solo -l info

.PHONY: install run worker migrate test lint bench

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
	@$(VENV)/bin/celery -A workers worker $(WORKER_ARGS) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver --insecure --noreload 0.0.0.0:$${PORT:-8000}

worker: migrate
	$(VENV)/bin/celery -A workers worker $(WORKER_ARGS)

test: install
	$(PY) -m pytest

# Latency (p50/p95) of the statistics and history endpoints on PostgreSQL with five years of
# synthetic history, in a throw-away database beside DATABASE_URL's (default
# postgres://postgres@127.0.0.1:5432/test); merged into bench/results.json.
# BENCH_ARGS="--compare" measures again without the statistics indexes.
bench: install
	$(PY) bench/stats_bench.py $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
