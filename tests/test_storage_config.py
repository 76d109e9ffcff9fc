"""Object storage configuration: ``STORAGE_URL`` or the ``AWS_*`` variables -> django-storages'
S3 backend; local files otherwise. Compose runs MinIO and points every app service at it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fitness.core.storage import FILESYSTEM_BACKEND, S3_BACKEND, StorageConfigError, default_storage

REPO = Path(__file__).resolve().parents[1]


def options(environ: dict) -> dict:
    config = default_storage(environ)
    assert config["BACKEND"] == S3_BACKEND
    return config["OPTIONS"]


def test_local_files_without_configuration():
    assert default_storage({}) == {"BACKEND": FILESYSTEM_BACKEND}
    assert default_storage({"STORAGE_URL": " ", "AWS_STORAGE_BUCKET_NAME": ""}) == {"BACKEND": FILESYSTEM_BACKEND}


def test_storage_url_with_credentials_prefix_and_endpoint():
    got = options(
        {"STORAGE_URL": "s3://AK%2F1:s%40cret@rec-bucket/tenant/a?endpoint_url=http://minio:9000&region_name=eu-1"}
    )
    config = got.pop("client_config")
    assert got == {
        "bucket_name": "rec-bucket",
        "access_key": "AK/1",
        "secret_key": "s@cret",
        "location": "tenant/a",
        "endpoint_url": "http://minio:9000",
        "region_name": "eu-1",
        "file_overwrite": False,
    }
    # An endpoint means MinIO or similar: bucket in the path; short timeouts.
    assert config.s3 == {"addressing_style": "path"}
    assert (config.connect_timeout, config.read_timeout) == (5, 30)


def test_storage_url_without_credentials_leaves_them_to_boto3():
    got = options({"STORAGE_URL": "s3://bucket"})
    assert "access_key" not in got
    assert "secret_key" not in got
    assert got["client_config"].s3 is None, "AWS itself: boto3 picks the addressing style"


def test_the_aws_variables():
    got = options({
        "AWS_STORAGE_BUCKET_NAME": "b",
        "AWS_S3_ENDPOINT_URL": "https://s3.example.org",
        "AWS_S3_REGION_NAME": "r",
        "AWS_LOCATION": "pre",
        "AWS_S3_ADDRESSING_STYLE": "virtual",
    })  # fmt: skip
    assert (got["bucket_name"], got["endpoint_url"], got["region_name"], got["location"]) == (
        "b", "https://s3.example.org", "r", "pre")  # fmt: skip
    assert got["client_config"].s3 == {"addressing_style": "virtual"}


def test_storage_url_wins_over_the_aws_variables():
    assert options({"STORAGE_URL": "s3://one", "AWS_STORAGE_BUCKET_NAME": "two"})["bucket_name"] == "one"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gs://bucket", "must start with s3://"),
        ("s3://", "names no bucket"),
        ("s3://key@bucket", "no secret"),
        ("s3://bucket?endpoint=http://x", "unknown parameter 'endpoint'"),
    ],
)
def test_bad_storage_urls_say_what_is_wrong(url, problem):
    with pytest.raises(StorageConfigError, match=problem):
        default_storage({"STORAGE_URL": url})


def test_compose_stores_in_minio_and_shares_no_media_volume():
    compose = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())
    services = compose["services"]
    assert {"minio", "minio-init"} <= set(services)
    assert "mc mb --ignore-existing local/fitness" in services["minio-init"]["entrypoint"]
    for name in ("migrate", "web", "worker", "worker-admin", "beat"):
        service = services[name]
        got = options(service["environment"])
        assert (got["bucket_name"], got["endpoint_url"]) == ("fitness", "http://minio:9000"), name
        assert "volumes" not in service, f"{name} needs no shared folder"
        assert "minio-init" in service["depends_on"], name
    assert "media" not in compose.get("volumes", {})
