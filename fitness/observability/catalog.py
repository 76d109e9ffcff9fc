"""The metrics this app exports: names, help texts, label values and histogram buckets.

Everything ``/metrics`` can show is listed in :data:`EXPORTED` (the dashboard test checks
its queries against it). Label values come from short fixed lists: no user, session or path
ids, so the number of series stays bounded.
"""

from __future__ import annotations

#: Upper bounds (seconds) of the counting histograms: upload -> done is about 0.2 s for one
#: session on a warm worker and up to the task time limit (300 s) under a backlog.
COUNTING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Upper bounds (seconds) of the HTTP latency histogram (an upload is parsed in the request).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- Kept in the database, written by the processes that see the event ---------------------
SESSIONS_TOTAL = "fitness_sessions_total"
SESSIONS_HELP = "Sessions uploaded, and countings that ended done or failed, by counting method."
SESSION_STATUSES = ("uploaded", "done", "failed")
#: ``none``: not counted (an upload, or a failure before any set was found).
SESSION_METHODS = ("classifier", "learned", "generic", "none")
COUNTING_SECONDS = "fitness_counting_seconds"
COUNTING_HELP = (
    "Seconds of a counting that ended done: span=upload_to_done from queueing to done, "
    "span=worker the worker's own counting time."
)
COUNTING_SPANS = ("upload_to_done", "worker")
WEBHOOK_DELIVERIES_TOTAL = "fitness_webhook_deliveries_total"
WEBHOOK_HELP = "Webhook delivery attempts by outcome (delivered, retried, failed: given up)."
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")

# --- Counted by each web process (prometheus_client; multiprocess mode under gunicorn) -----
HTTP_REQUESTS_TOTAL = "fitness_http_requests_total"
HTTP_DURATION_SECONDS = "fitness_http_request_duration_seconds"

# --- Read at scrape time (bounded queries, the broker) --------------------------------------
QUEUE_MESSAGES = "fitness_celery_queue_messages"
BROKER_UP = "fitness_broker_up"
OLDEST_QUEUED_AGE = "fitness_oldest_queued_session_age_seconds"
SESSIONS_PENDING = "fitness_sessions_pending"
MODEL_INFO = "fitness_model_info"
LIVE_SETS = "fitness_model_live_sets"
LIVE_EXACT = "fitness_model_live_exact_ratio"
LIVE_WITHIN_1 = "fitness_model_live_within_1_ratio"
LIVE_COUNT_MAE = "fitness_model_live_count_mae"

#: Every series name ``/metrics`` can show (histograms with their suffixes).
EXPORTED = frozenset(
    {
        SESSIONS_TOTAL,
        *(f"{COUNTING_SECONDS}{s}" for s in ("_bucket", "_sum", "_count")),
        WEBHOOK_DELIVERIES_TOTAL,
        HTTP_REQUESTS_TOTAL,
        *(f"{HTTP_DURATION_SECONDS}{s}" for s in ("_bucket", "_sum", "_count")),
        QUEUE_MESSAGES,
        BROKER_UP,
        OLDEST_QUEUED_AGE,
        SESSIONS_PENDING,
        MODEL_INFO,
        LIVE_SETS,
        LIVE_EXACT,
        LIVE_WITHIN_1,
        LIVE_COUNT_MAE,
    }
)
