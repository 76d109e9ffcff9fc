"""Model file validation: phase labels must name exercises of the catalog."""

from __future__ import annotations

import pytest

from fitness.mlmodels.validation import validate_model_file
from inference import catalog
from inference.model import ModelFileError, read_metadata

from .conftest import _rewrite_metadata

# The model check itself is under test: every check runs its child (no result reused).
pytestmark = pytest.mark.real_model_check


def test_the_shipped_model_exercises_are_in_the_catalog(default_model_file):
    labels = read_metadata(default_model_file.path)["labels"]
    exercises = {label.split(".")[0] for label in labels if "." in label}
    assert exercises == {"burpee", "squat", "sit_up"}
    assert all(catalog.is_known(e) for e in exercises)


def test_labels_with_exercises_outside_the_catalog_are_refused(model_files, tmp_path):
    def rename(meta: dict) -> dict:
        labels = [label.replace("sit_up.", "kettlebell_flip.").replace("squat.", "zz_hop.") for label in meta["labels"]]
        return {**meta, "version": "tiny-foreign", "labels": labels}

    foreign = _rewrite_metadata(model_files["a"].path, tmp_path / "foreign.keras", rename)
    with pytest.raises(ModelFileError) as info:
        validate_model_file(foreign.read_bytes())
    message = str(info.value)
    assert "kettlebell_flip, zz_hop" in message
    assert "sit_up" not in message
    assert catalog.WHERE_THE_LIST_IS in message
