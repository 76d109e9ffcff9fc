"""Where recordings and model files live: Django's ``STORAGES["default"]`` from the environment.

Local files under ``MEDIA_ROOT`` unless object storage is configured, in either way:

- ``STORAGE_URL=s3://[ACCESS_KEY:SECRET@]BUCKET[/PREFIX][?endpoint_url=URL&region_name=R&addressing_style=path]``
  (key and secret URL-quoted; without them boto3's usual chain is used: ``AWS_ACCESS_KEY_ID``
  and ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role);
- ``AWS_STORAGE_BUCKET_NAME`` with the usual django-storages variables ``AWS_S3_ENDPOINT_URL``,
  ``AWS_S3_REGION_NAME``, ``AWS_LOCATION`` (a prefix), ``AWS_S3_ADDRESSING_STYLE``.

Either gives django-storages' S3 backend (Amazon S3, MinIO, any S3-compatible store). The
settings call :func:`default_storage`; nothing here reads Django's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"

#: ``STORAGE_URL`` query parameters, passed on as S3Storage options of the same name.
URL_OPTIONS = ("endpoint_url", "region_name", "addressing_style", "signature_version", "location")
#: The usual environment variables and the S3Storage option each one sets.
ENV_OPTIONS = {
    "AWS_S3_ENDPOINT_URL": "endpoint_url",
    "AWS_S3_REGION_NAME": "region_name",
    "AWS_LOCATION": "location",
    "AWS_S3_ADDRESSING_STYLE": "addressing_style",
    "AWS_S3_SIGNATURE_VERSION": "signature_version",
}
#: Seconds to connect to and to wait for the object store (botocore's default is 60 each:
#: an upload would hang that long on an unreachable store).
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


class StorageConfigError(ImproperlyConfigured):
    """``STORAGE_URL`` (or the ``AWS_*`` variables) cannot be used; the message says why."""


class StorageUnavailable(Exception):  # noqa: N818 - a condition, as Django's ServiceUnavailable
    """The object store could not be reached or answered a server error: try again later."""


#: S3 error codes that say "later", not "never" (with any HTTP 5xx).
TRANSIENT_S3_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"})


def is_transient_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` from a storage call is an outage of the object store (retry) rather than
    a missing or refused object (fail): no connection, a timeout, a 5xx or a throttling answer.

    Local files never are: a missing file stays missing.
    """
    try:
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - botocore is in requirements.txt
        return False
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in TRANSIENT_S3_CODES or int(status) >= 500
    return False


def parse_storage_url(url: str) -> dict:
    """S3Storage options of a ``STORAGE_URL`` (see the module's docstring).

    Raises:
        StorageConfigError: not ``s3://``, no bucket, or an unknown query parameter.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise StorageConfigError(f"STORAGE_URL must start with s3:// (got {parts.scheme or 'no'} scheme)")
    bucket = unquote(parts.netloc.rpartition("@")[2])
    if not bucket:
        raise StorageConfigError("STORAGE_URL names no bucket (s3://BUCKET?endpoint_url=...)")
    options: dict = {"bucket_name": bucket}
    if parts.username:
        if parts.password is None:
            raise StorageConfigError("STORAGE_URL has an access key but no secret (s3://KEY:SECRET@BUCKET)")
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password)
    prefix = parts.path.strip("/")
    if prefix:
        options["location"] = prefix
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in URL_OPTIONS:
            raise StorageConfigError(f"STORAGE_URL: unknown parameter {key!r} (known: {', '.join(URL_OPTIONS)})")
        options[key] = value
    return options


def default_storage(environ: Mapping[str, str]) -> dict:
    """``STORAGES["default"]`` for this environment: the S3 backend when ``STORAGE_URL`` or
    ``AWS_STORAGE_BUCKET_NAME`` is set, else local files (``MEDIA_ROOT``).

    Raises:
        StorageConfigError: see :func:`parse_storage_url`.
    """
    url = (environ.get("STORAGE_URL") or "").strip()
    if url:
        options = parse_storage_url(url)
    elif bucket := (environ.get("AWS_STORAGE_BUCKET_NAME") or "").strip():
        options = {"bucket_name": bucket}
        options |= {option: environ[name] for name, option in ENV_OPTIONS.items() if environ.get(name)}
    else:
        return {"BACKEND": FILESYSTEM_BACKEND}
    if options.get("endpoint_url"):
        # MinIO and most S3-compatible servers answer on one host: bucket in the path.
        options.setdefault("addressing_style", "path")
    # Stored names are unique (session ids, model checksums); an upload that loses a race for a
    # model's name must get a name of its own, never replace (and then delete) the winner's file.
    options["file_overwrite"] = False
    # S3Storage ignores its addressing_style and signature_version once a client_config is given.
    options["client_config"] = client_config(
        addressing_style=options.pop("addressing_style", None), signature_version=options.pop("signature_version", None)
    )
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def client_config(*, addressing_style: str | None = None, signature_version: str | None = None):
    """The botocore client configuration of the S3 backend: short timeouts, standard retries."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": addressing_style} if addressing_style else None,
        signature_version=signature_version,
    )
