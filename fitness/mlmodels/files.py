"""Stored model files as local paths: the model runtime loads from a file, the registry may keep
its files in object storage.

With local storage (``FileSystemStorage``) the stored file is used where it is. With object
storage (S3, MinIO) a copy is downloaded once per host into ``FITNESS_MODEL_CACHE_DIR``, named by
the file's checksum, verified while it is written and moved into place atomically, so that
concurrent workers never load a partial file and each version is downloaded once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db.models.fields.files import FieldFile

from inference.model import ModelFileError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def local_model_path(file: FieldFile, *, checksum: str | None = None) -> Path:
    """A local path holding the stored ``file`` (a registry FileField's file).

    ``checksum`` (SHA-256, hex) names the cached copy and is checked on download; without it
    the copy is named after the stored file (the registry's names are content-addressed).

    Raises:
        FileNotFoundError: nothing is stored under the file's name.
        ModelFileError: the downloaded bytes do not have ``checksum``.
        Exception: the storage's own errors (e.g. botocore's when S3 cannot be reached).
    """
    try:
        return Path(file.path)
    except NotImplementedError:  # no local path: object storage
        pass
    name = PurePosixPath(file.name)
    cache_dir = Path(settings.FITNESS_MODEL_CACHE_DIR)
    target = cache_dir / (f"{checksum}{name.suffix}" if checksum else name.name)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, file.storage.open(file.name, "rb") as stored:
            for chunk in iter(lambda: stored.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if checksum and digest.hexdigest() != checksum:
            raise ModelFileError(f"the stored model file {file.name} does not match its checksum")
        Path(partial).replace(target)
    finally:
        Path(partial).unlink(missing_ok=True)
    logger.info("model file %s copied from %s to %s", file.name, type(file.storage).__name__, target)
    return target
