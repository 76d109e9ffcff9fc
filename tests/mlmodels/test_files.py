"""Model files in object storage (moto's S3 server standing in for MinIO): the registry stores
them through the storage API, and a worker loads them from a local copy named by checksum."""

from __future__ import annotations

import hashlib

import pytest

from fitness.mlmodels.files import local_model_path
from fitness.mlmodels.runtime import load_version_model
from fitness.mlmodels.services import model_version_create
from fitness.mlmodels.validation import validate_model_file
from inference.model import DEFAULT_KERAS_PATH, DEFAULT_MODEL_PATH, ModelFileError

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_dir(settings, tmp_path):
    settings.FITNESS_MODEL_CACHE_DIR = tmp_path / "model-cache"
    return settings.FITNESS_MODEL_CACHE_DIR


@pytest.fixture(scope="module")
def validated(default_model_file):
    """The shipped model file with its shipped export, validated once (loading it takes seconds)."""
    return validate_model_file(DEFAULT_KERAS_PATH.read_bytes(), runtime_data=DEFAULT_MODEL_PATH.read_bytes())


@pytest.fixture
def shipped_on_s3(s3_bucket, validated):
    return model_version_create(upload=validated, user=None)


def test_the_registry_stores_the_file_in_the_bucket(shipped_on_s3, s3_bucket, stored_files):
    key = f"models/{shipped_on_s3.checksum}.keras"
    assert key in s3_bucket.keys("models/")
    assert hashlib.sha256(s3_bucket.read(key)).hexdigest() == shipped_on_s3.checksum
    assert stored_files() == [], "nothing under MEDIA_ROOT"


def test_a_local_copy_is_made_once_and_verified(shipped_on_s3, s3_bucket, cache_dir):
    path = local_model_path(shipped_on_s3.file, checksum=shipped_on_s3.checksum)
    assert path.parent == cache_dir
    assert path.name == f"{shipped_on_s3.checksum}.keras"
    assert path.read_bytes() == DEFAULT_KERAS_PATH.read_bytes()
    assert [p.name for p in cache_dir.iterdir()] == [path.name], "no partial file left behind"
    # The copy is reused: the bucket is not read again (the object may even be gone).
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=shipped_on_s3.file.name)
    assert local_model_path(shipped_on_s3.file, checksum=shipped_on_s3.checksum) == path


def test_a_copy_with_the_wrong_checksum_is_refused_and_not_kept(shipped_on_s3, cache_dir):
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        local_model_path(shipped_on_s3.file, checksum="0" * 64)
    assert list(cache_dir.iterdir()) == []


def test_a_missing_object_is_file_not_found(shipped_on_s3, s3_bucket, cache_dir):
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=shipped_on_s3.file.name)
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=shipped_on_s3.runtime_file.name)
    with pytest.raises(FileNotFoundError):
        local_model_path(shipped_on_s3.file, checksum=shipped_on_s3.checksum)
    with pytest.raises(ModelFileError, match="is missing"):
        load_version_model(shipped_on_s3)


def test_the_worker_loads_the_production_model_from_the_bucket(shipped_on_s3, cache_dir):
    model = load_version_model(shipped_on_s3)
    assert model.checksum == shipped_on_s3.runtime_checksum  # the .onnx export, not the .keras
    assert (cache_dir / f"{shipped_on_s3.runtime_checksum}.onnx").is_file()


def test_local_files_are_used_where_they_are(validated, media_root, cache_dir):
    version = model_version_create(upload=validated, user=None)
    path = local_model_path(version.file, checksum=version.checksum)
    assert path == media_root / version.file.name
    assert not cache_dir.exists()


def test_an_upload_is_exported_from_the_bucket_into_the_bucket(s3_bucket, register, model_files, cache_dir):
    """The export task's service reads the .keras through the storage API (a checked local copy)
    and stores the export beside it in the bucket; workers then load the export."""
    from fitness.mlmodels.services import model_version_export

    version = register(model_files["a"])
    assert version.runtime_status == "pending"
    version = model_version_export(version_id=version.pk)
    assert version.runtime_status == "ready"
    assert s3_bucket.keys("models/") == sorted(
        [f"models/{version.checksum}.keras", f"models/{version.runtime_checksum}.onnx"]
    )
    assert (cache_dir / f"{version.checksum}.keras").is_file()  # the copy the export was made from
    onnx = s3_bucket.read(f"models/{version.runtime_checksum}.onnx")
    assert hashlib.sha256(onnx).hexdigest() == version.runtime_checksum
    assert load_version_model(version).checksum == version.runtime_checksum
