"""Django settings: 12-factor, everything from the environment with safe local defaults.

Local runs need no server: SQLite at ``var/db.sqlite3`` and Kombu's filesystem
broker under ``var/broker/``. Set ``DATABASE_URL`` (PostgreSQL) and
``CELERY_BROKER_URL`` (Redis) for anything shared.
"""

import os
import re
import secrets
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from fitness.core.storage import default_storage as storage_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core ---------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)

# The signing key (tokens, sessions, password resets). Nothing is committed: production sets
# DJANGO_SECRET_KEY; `make run` passes a random key made once per install and kept in
# var/secret_key (not in git); with DEBUG on, or under pytest, settings read (or make) that
# file themselves. With DEBUG off, a missing, short or published key refuses to start.
SECRET_KEY_FILE = Path(env.str("DJANGO_SECRET_KEY_FILE", default=str(VAR_DIR / "secret_key")))
#: Keys that were published and must never sign anything (the old local default among them).
KNOWN_SECRET_KEYS = frozenset({"local-dev-only-not-secret-8f2c1d0b7a"})
MIN_SECRET_KEY_LENGTH = 50


def _local_secret_key(path: Path) -> str:
    """This install's random key from ``path``, made (owner-only, atomically) if absent."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(MIN_SECRET_KEY_LENGTH) + "\n")
        try:
            os.link(tmp, path)  # fails if another process made it first: theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _secret_key_problem(key: str) -> str | None:
    """Why ``key`` cannot sign in production, or None (the rules of Django's security.W009, refused)."""
    if not key:
        return "is not set"
    if key in KNOWN_SECRET_KEYS or key.startswith("django-insecure-"):
        return "is a published default key"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    if len(set(key)) < 5:
        return "has fewer than 5 different characters"
    return None


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
# pytest (8.2 and later) sets PYTEST_VERSION for its run and the processes it starts.
if not SECRET_KEY and (DEBUG or "PYTEST_VERSION" in os.environ):
    SECRET_KEY = _local_secret_key(SECRET_KEY_FILE)
if not DEBUG and (_problem := _secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY {_problem}: with DEBUG off the server refuses to start. Set DJANGO_SECRET_KEY to "
        f"{MIN_SECRET_KEY_LENGTH}+ random characters, e.g. "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))' (`make run` passes the key it keeps "
        "in var/secret_key; DJANGO_DEBUG=true reads that file for local runs)."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Lockout after repeated failed logins (admin and API): "Authentication" below.
    "axes",
    "rest_framework",
    "rest_framework_simplejwt",
    # Refresh tokens listed as issued, and blacklisted on rotation, logout and password change.
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    # Swagger UI and Redoc served from our own static files: the API docs need no network.
    "drf_spectacular_sidecar",
    "fitness.accounts",
    "fitness.workouts",
    "fitness.stats",
    "fitness.mlmodels",
    "fitness.webhooks",
    # /metrics, request ids, JSON log lines (docs/operations.md, "Metrics and logs").
    "fitness.observability",
]

MIDDLEWARE = [
    # First: the request id (X-Request-ID) is on every log line, task and answer; HTTP metrics.
    "fitness.observability.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) straight from the WSGI app, before sessions and auth.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login of a Django view (the admin) into axes' 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "fitness.urls"
WSGI_APPLICATION = "fitness.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "fitness" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 30)
    # Write transactions take the lock when they begin, so concurrent ones queue up (a
    # deferred transaction that must upgrade its lock would fail at once instead).
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # Tests use a file (not :memory:) so that an e2e worker process sees the same data;
    # one file per test process, so that concurrent test runs in one checkout do not clash.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("DJANGO_TEST_DB_NAME", default=str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Authentication -----------------------------------------------------------------
# django-axes counts failed logins on every path that calls authenticate() with the request:
# the admin login form, the JWT token endpoint (its serializer passes the request) and the
# password change. After AXES_FAILURE_LIMIT failures within the cool-off, logins of that
# account from that address are refused (the pair: the owner on another address, and other
# users of the address, are not locked out); after FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT failures
# of one address across accounts (password spraying), logins from that address are refused.
# Both last AXES_COOLOFF_MINUTES after the last failure: the admin answers axes' page, the API a
# 429 JSON error with Retry-After. A successful login forgets the failures of its account from
# its address. Counts live in the database (all processes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
# [["username", "ip_address"]], plus "ip_address" once the address is over its own limit.
AXES_LOCKOUT_PARAMETERS = "fitness.accounts.lockout.lockout_parameters"
FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT = env.int("FITNESS_LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
AXES_RESET_ON_SUCCESS = False  # fitness.accounts.lockout forgets the account's failures instead
# The client address as the API's throttles see it (X-Forwarded-For only API_NUM_PROXIES deep).
AXES_CLIENT_IP_CALLABLE = "fitness.accounts.lockout.client_ip"
# Successful logins are not logged (a row per token would grow without end).
AXES_DISABLE_ACCESS_LOG = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files --------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves static files under gunicorn with DEBUG off. Once `collectstatic` has run
# (the Docker image does, with DJANGO_STATIC_COLLECTED=true), they are served from STATIC_ROOT:
# hashed names, gzip copies, cached for ever. Without a collection (`make run`, the
# tests) they are served as they are from the apps' static folders, and no manifest is needed.
STATIC_COLLECTED = env.bool("DJANGO_STATIC_COLLECTED", default=(Path(STATIC_ROOT) / "staticfiles.json").is_file())
STORAGES = {
    # Recordings and model files: local files under MEDIA_ROOT, or object storage (django-storages'
    # S3 backend: S3, MinIO) when STORAGE_URL or AWS_STORAGE_BUCKET_NAME is set (fitness/core/storage.py).
    "default": storage_from_env(os.environ),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_COLLECTED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_COLLECTED
if not STATIC_COLLECTED:
    # STATIC_ROOT exists only after a collection; WhiteNoise would warn on every start.
    warnings.filterwarnings("ignore", message=rf"No directory at: {re.escape(str(STATIC_ROOT))}")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
#: Where a worker keeps local copies of model files kept in object storage (named by checksum):
#: the model runtime loads from a path.
FITNESS_MODEL_CACHE_DIR = env.path("FITNESS_MODEL_CACHE_DIR", default=Path(tempfile.gettempdir()) / "fitness-models")
#: The learned repetition counter's file (.onnx with its CounterSpec) the workers count with; empty:
#: the shipped one, inference/models/counter.onnx (none while that file is absent).
FITNESS_LEARNED_COUNTER_PATH = env.str("FITNESS_LEARNED_COUNTER_PATH", default="")
#: Largest accepted recording upload in bytes (413 above).
FITNESS_MAX_UPLOAD_BYTES = env.int("FITNESS_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)
#: Largest accepted model file upload in bytes (model registry).
FITNESS_MAX_MODEL_BYTES = env.int("FITNESS_MAX_MODEL_BYTES", default=100 * 1024 * 1024)
#: Address space (MiB, RLIMIT_AS) of the child process that builds an uploaded network to check
#: and export it; a file that needs more is refused (the shipped model's export peaks near 2.7 GiB).
FITNESS_MODEL_CHECK_MEMORY_MB = env.int("FITNESS_MODEL_CHECK_MEMORY_MB", default=4096)
#: Wall-clock limit (s) of that child process (the shipped model's export takes most of a minute).
FITNESS_MODEL_CHECK_TIMEOUT_S = env.int("FITNESS_MODEL_CHECK_TIMEOUT_S", default=600)
#: Labelled recordings a model version is evaluated on unless admins chose sessions.
FITNESS_EVALUATION_MANIFEST = env.path(
    "FITNESS_EVALUATION_MANIFEST", default=BASE_DIR / "inference" / "models" / "evaluation_manifest.json"
)
#: Most corrected sessions (newest first) an evaluation on users' corrections reads.
FITNESS_CORRECTION_EVALUATION_MAX = env.int("FITNESS_CORRECTION_EVALUATION_MAX", default=500)
# Non-file request bodies stay small; the recording size is checked by the upload view.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Cache --------------------------------------------------------------------------
# The API's rate limits are counted here, and rendered session plots kept: per-process
# memory unless CACHE_URL names a shared cache (e.g. redis://127.0.0.1:6379/1; docker
# compose sets one). `check --deploy` warns with DEBUG off and a process-local cache.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- REST framework -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # JWT first: anonymous requests are answered 401 with a Bearer challenge.
        # simplejwt's, refusing tokens issued before the account's last password change.
        "fitness.accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=20),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Request bodies are JSON; the views that take a file (recording and model uploads) read
    # multipart instead, and only there: one content type per body in the schema, so generated
    # clients get one typed method per operation.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Rates per scope (fitness/core/throttling.py reads them per request); 429 with Retry-After above.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_THROTTLE_RATE", default="100/minute"),
        # register, token, token refresh: per client address (password guessing)
        "auth": env.str("API_AUTH_THROTTLE_RATE", default="20/minute"),
        # recording uploads: per user (an offline backlog of a week syncs in one go)
        "upload": env.str("API_UPLOAD_THROTTLE_RATE", default="300/hour"),
        # webhook redeliveries: per user (each one is up to FITNESS_WEBHOOKS_MAX_ATTEMPTS POSTs)
        "redeliver": env.str("API_REDELIVER_THROTTLE_RATE", default="30/hour"),
    },
    # Reverse proxies in front of the app: the client address is taken from X-Forwarded-For
    # only that deep, so a client cannot pick its own address to escape per-address limits.
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A refresh token works once: refreshing answers a new one and blacklists the old one.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Repetition counting API",
    "DESCRIPTION": "Upload inertial sensor recordings, get counted sets and repetitions, and exercise statistics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ (Swagger UI) and /api/redoc/ load their assets from drf_spectacular_sidecar.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the online validator at swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ModelStageEnum": "fitness.mlmodels.models.Stage",
        "SettableModelStageEnum": "fitness.mlmodels.models.SETTABLE_STAGE_CHOICES",
        # Two fields named kind: the model versions' (classifier or counter) and the stats records'.
        "ModelKindEnum": "fitness.mlmodels.models.Kind",
        # The sessions' status keeps its name beside the webhooks' status fields.
        "StatusEnum": "fitness.workouts.models.SensorSession.Status",
        # Two fields named method: the sets' (what counted them) and the exercise catalog's.
        "SetMethodEnum": "fitness.workouts.models.ExerciseSet.Method",
        "CountingMethodEnum": "inference.catalog.COUNTING_METHODS",
        "SetOriginEnum": "fitness.workouts.models.ExerciseSet.Origin",
        # A session's exemplar as stored (auto, none, set) and what an upload may ask for (auto, none).
        "SessionExemplarEnum": "fitness.workouts.models.ExemplarChoice",
        "UploadExemplarEnum": "fitness.workouts.models.UPLOAD_EXEMPLAR_CHOICES",
        "WebhookEventEnum": "fitness.webhooks.models.Event",
        "WebhookDeliveryStatusEnum": "fitness.webhooks.models.Delivery.Status",
        "WebhookSessionStatusEnum": "fitness.webhooks.models.FINISHED_STATUS_CHOICES",
    },
    # Error answers (400/401/403/404/413/415/429) documented on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "fitness.openapi.document_error_responses",
    ],
}

# --- Celery -------------------------------------------------------------------------
BROKER_DIR = env.path("CELERY_BROKER_DIR", default=VAR_DIR / "broker")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker for local runs: messages are files; web and worker share the folders.
    _queue_dir = Path(BROKER_DIR) / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(Path(BROKER_DIR) / "processed"),
        "control_folder": str(Path(BROKER_DIR) / "control"),
        "store_processed": False,
    }
    for _folder in ("data_folder_in", "processed_folder", "control_folder"):
        Path(CELERY_BROKER_TRANSPORT_OPTIONS[_folder]).mkdir(parents=True, exist_ok=True)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Fail fast on an unreachable host (the upload answers anyway: see the publish policy).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 5}
# Extra transport options as JSON, e.g. {"visibility_timeout": 3600} (Redis: how long an
# unacknowledged task waits before it is delivered again after its worker was lost).
CELERY_BROKER_TRANSPORT_OPTIONS.update(env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={}))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing gives up after about a second: an upload is stored as ``queued`` either way,
# and the sweep below queues it again once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_TASK_IGNORE_RESULT = True
# Three queues, so that admin jobs never wait in front of a user's upload and a slow webhook
# receiver never holds either: ``counting`` (a user's session, and the sweep's re-queueing of
# one), ``admin`` (evaluations, shadow counts, reprocessing, the periodic sweeps) and
# ``webhooks`` (deliveries). Compose runs a worker for each (``-Q counting``, ``-Q admin``,
# ``-Q webhooks``); a worker started without ``-Q`` (``make run``) consumes all three.
CELERY_COUNTING_QUEUE = env.str("CELERY_COUNTING_QUEUE", default="counting")
CELERY_ADMIN_QUEUE = env.str("CELERY_ADMIN_QUEUE", default="admin")
CELERY_WEBHOOKS_QUEUE = env.str("CELERY_WEBHOOKS_QUEUE", default="webhooks")
#: Task name -> queue of every task of the project (tests check that none is missing).
FITNESS_TASK_QUEUES = {
    "workers.tasks.process_session": CELERY_COUNTING_QUEUE,
    "workers.tasks.reprocess_session": CELERY_ADMIN_QUEUE,
    "workers.tasks.shadow_count_session": CELERY_ADMIN_QUEUE,
    "workers.tasks.evaluate_model_version": CELERY_ADMIN_QUEUE,
    "workers.tasks.export_model_version": CELERY_ADMIN_QUEUE,
    "workers.tasks.validate_model_version": CELERY_ADMIN_QUEUE,
    "workers.tasks.requeue_stale_model_versions": CELERY_ADMIN_QUEUE,
    "workers.tasks.requeue_stale_sessions": CELERY_ADMIN_QUEUE,
    "workers.tasks.delete_orphan_files": CELERY_ADMIN_QUEUE,
    "workers.tasks.purge_tombstones": CELERY_ADMIN_QUEUE,
    "workers.tasks.flush_expired_tokens": CELERY_ADMIN_QUEUE,
    "webhooks.deliver": CELERY_WEBHOOKS_QUEUE,
}
CELERY_TASK_ROUTES = {name: {"queue": queue} for name, queue in FITNESS_TASK_QUEUES.items()}
CELERY_TASK_QUEUES = [
    Queue(name) for name in dict.fromkeys((CELERY_COUNTING_QUEUE, CELERY_ADMIN_QUEUE, CELERY_WEBHOOKS_QUEUE))
]
#: Where a task without a route would go (none: see FITNESS_TASK_QUEUES).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default=CELERY_COUNTING_QUEUE)
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged when it ends, and given back to the broker when its worker process
# dies under it, so a lost worker's task is run again (saving a result is idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool process whose resident memory passed this (KiB) after a task is replaced by a fresh
# one, so a big recording's memory is given back (every worker: make run, compose, a shell).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=1_500_000)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_WORKER_SEND_TASK_EVENTS = False
# Celery's consumer, surviving a Redis outage with a task in flight (see workers/consumer.py).
CELERY_WORKER_CONSUMER = "workers.consumer:Consumer"

# The sweep (workers.tasks.requeue_stale_sessions, run by Celery beat: `make run` embeds it
# in the worker, docker compose runs a beat service) queues again the sessions whose task
# was lost: ``queued`` longer than FITNESS_SWEEP_QUEUED_AFTER_S (the broker was down, or
# restarted without persistence), ``processing`` longer than the hard time limit plus a
# minute (the worker died). A session whose counting was started FITNESS_MAX_COUNT_ATTEMPTS
# times without an end fails with the reason.
FITNESS_SWEEP_INTERVAL_S = env.float("FITNESS_SWEEP_INTERVAL_S", default=60.0)
FITNESS_SWEEP_QUEUED_AFTER_S = env.float("FITNESS_SWEEP_QUEUED_AFTER_S", default=300.0)
FITNESS_SWEEP_PROCESSING_AFTER_S = env.float("FITNESS_SWEEP_PROCESSING_AFTER_S", default=CELERY_TASK_TIME_LIMIT + 60.0)
FITNESS_MAX_COUNT_ATTEMPTS = env.int("FITNESS_MAX_COUNT_ATTEMPTS", default=3)
# The registry's sweep (workers.tasks.requeue_stale_model_versions, same interval) queues again a
# model version's validation or export that is still pending and whose task was queued longer
# ago than this: the tasks' hard limit (960 s) plus a minute, so a running check is not queued twice.
FITNESS_SWEEP_MODEL_PENDING_AFTER_S = env.float("FITNESS_SWEEP_MODEL_PENDING_AFTER_S", default=1020.0)
# The orphan check (workers.tasks.delete_orphan_files) removes stored recordings that no
# session refers to, once they are older than FITNESS_ORPHAN_MIN_AGE_S.
FITNESS_ORPHAN_SWEEP_INTERVAL_S = env.float("FITNESS_ORPHAN_SWEEP_INTERVAL_S", default=6 * 3600.0)
FITNESS_ORPHAN_MIN_AGE_S = env.float("FITNESS_ORPHAN_MIN_AGE_S", default=24 * 3600.0)
# Sync (GET /sets/changes/): the window ends FITNESS_SYNC_LAG_S before now (longer than any write
# transaction of sets), and tombstones of deleted rows are kept FITNESS_SYNC_TOMBSTONE_DAYS, then
# purged daily by workers.tasks.purge_tombstones (an older cursor answers 410: resync in full).
FITNESS_SYNC_LAG_S = env.float("FITNESS_SYNC_LAG_S", default=30.0)
FITNESS_SYNC_TOMBSTONE_DAYS = env.int("FITNESS_SYNC_TOMBSTONE_DAYS", default=90)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-sessions": {
        "task": "workers.tasks.requeue_stale_sessions",
        "schedule": FITNESS_SWEEP_INTERVAL_S,
        "options": {"expires": FITNESS_SWEEP_INTERVAL_S},
    },
    "requeue-stale-model-versions": {
        "task": "workers.tasks.requeue_stale_model_versions",
        "schedule": FITNESS_SWEEP_INTERVAL_S,
        "options": {"expires": FITNESS_SWEEP_INTERVAL_S},
    },
    "delete-orphan-files": {
        "task": "workers.tasks.delete_orphan_files",
        "schedule": FITNESS_ORPHAN_SWEEP_INTERVAL_S,
        "options": {"expires": FITNESS_ORPHAN_SWEEP_INTERVAL_S},
    },
    "purge-tombstones": {
        "task": "workers.tasks.purge_tombstones",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600.0},
    },
    # simplejwt's outstanding and blacklisted refresh tokens grow with every login until
    # flushexpiredtokens deletes the expired ones (fitness.accounts.tasks.flush_expired_tokens).
    "flush-expired-tokens": {
        "task": "workers.tasks.flush_expired_tokens",
        "schedule": 24 * 3600.0,
        "options": {"expires": 3600.0},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))

# --- Webhooks -----------------------------------------------------------------------
# Subscriptions (/api/v1/webhooks/) get a signed POST when a session is done or failed, from the
# Celery task webhooks.deliver on its own queue: FITNESS_WEBHOOKS_TIMEOUT_S for each network
# wait, FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S for a whole attempt (connecting, sending, the status
# line and headers together), up to FITNESS_WEBHOOKS_MAX_ATTEMPTS attempts, retried after
# FITNESS_WEBHOOKS_RETRY_BACKOFF_S seconds, doubling (at most FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S).
# The task's soft and hard time limits (FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S, ..._TIME_LIMIT_S) are a
# backstop: an attempt they cut is logged and retried like a timeout. URLs whose host resolves to a private,
# loopback, link-local, multicast or reserved address are refused, when subscribing and before
# each delivery, unless FITNESS_WEBHOOKS_ALLOW_PRIVATE (`make run` sets it: receivers on this machine).
FITNESS_WEBHOOKS_ALLOW_PRIVATE = env.bool("FITNESS_WEBHOOKS_ALLOW_PRIVATE", default=False)
FITNESS_WEBHOOKS_TIMEOUT_S = env.float("FITNESS_WEBHOOKS_TIMEOUT_S", default=5.0)
FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S = env.float("FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S", default=10.0)
FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S = env.float(
    "FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S", default=FITNESS_WEBHOOKS_ATTEMPT_DEADLINE_S + 20.0
)
FITNESS_WEBHOOKS_TIME_LIMIT_S = env.float(
    "FITNESS_WEBHOOKS_TIME_LIMIT_S", default=FITNESS_WEBHOOKS_SOFT_TIME_LIMIT_S + 15.0
)
FITNESS_WEBHOOKS_MAX_ATTEMPTS = env.int("FITNESS_WEBHOOKS_MAX_ATTEMPTS", default=5)
FITNESS_WEBHOOKS_RETRY_BACKOFF_S = env.float("FITNESS_WEBHOOKS_RETRY_BACKOFF_S", default=10.0)
FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S = env.float("FITNESS_WEBHOOKS_RETRY_BACKOFF_MAX_S", default=3600.0)
FITNESS_WEBHOOKS_MAX_PER_USER = env.int("FITNESS_WEBHOOKS_MAX_PER_USER", default=10)

# --- Logging ------------------------------------------------------------------------
# JSON lines (python-json-logger) with the request id and session id of what the line is about
# (fitness.observability.context); LOG_FORMAT=text keeps the plain lines (and Celery's own
# format in workers) for local runs. Workers take this configuration in JSON mode
# (workers/celery.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="json").lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "fitness.observability.context.LogContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(session_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
if LOG_FORMAT == "json":
    # runserver's access lines too (the request middleware logs each request with its id).
    LOGGING["loggers"] = {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}}

# --- Metrics ------------------------------------------------------------------------
# GET /metrics (Prometheus): with FITNESS_METRICS_TOKEN, a scraper showing
# "Authorization: Bearer <token>"; with FITNESS_METRICS_ALLOWED_NETWORKS (CIDRs, comma-separated),
# one from those networks; with neither, loopback only. PROMETHEUS_MULTIPROC_DIR (read by
# prometheus_client) sums the HTTP metrics of several web processes (gunicorn -w N).
FITNESS_METRICS_TOKEN = env.str("FITNESS_METRICS_TOKEN", default="")
FITNESS_METRICS_ALLOWED_NETWORKS = env.list("FITNESS_METRICS_ALLOWED_NETWORKS", default=[])
#: Seconds the production version's live metrics (an aggregate over its sets) are kept between scrapes.
FITNESS_METRICS_LIVE_CACHE_S = env.float("FITNESS_METRICS_LIVE_CACHE_S", default=300.0)
#: Seconds a scrape waits for the broker (queue lengths) before it reports fitness_broker_up 0.
FITNESS_METRICS_BROKER_TIMEOUT_S = env.float("FITNESS_METRICS_BROKER_TIMEOUT_S", default=2.0)

if not DEBUG:
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- HTTPS (production) -------------------------------------------------------------
# DJANGO_HTTPS=true where the site is served over HTTPS (behind a proxy that sets
# X-Forwarded-Proto): redirect to HTTPS, HSTS, secure cookies. `manage.py check --deploy`
# is clean with it, DJANGO_SECRET_KEY (50+ random characters) and DJANGO_ALLOWED_HOSTS.
HTTPS = env.bool("DJANGO_HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # load balancers and Prometheus use plain HTTP
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HTTPS)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=HTTPS)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=HTTPS):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
