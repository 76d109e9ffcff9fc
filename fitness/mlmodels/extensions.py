"""Hooks through which apps that build on the registry add to it, so that it imports none of them.

The registry depends on no other app of ``fitness``. What it shows or evaluates from other
apps' data comes through two hooks, registered from those apps' ``AppConfig.ready()``:

- :func:`register_version_summary`: a named figure per model version (the workouts app adds
  ``shadow``: how often a staging version agreed with production on real sessions). The API
  and the admin show whatever is registered.
- :func:`register_dataset_source`: a kind of evaluation dataset besides the shipped manifest
  (the workouts app adds ``sessions``: labelled uploaded sessions, and ``corrections``: sessions
  whose sets users reviewed, their counts as truth).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.io import Recording
    from inference.scoring import SetTruth

    from .models import ModelVersion

#: ``versions -> {version pk: summary}``; a version missing from the answer gets ``empty``.
Summarise = Callable[[Sequence["ModelVersion"]], dict[int, dict]]


@dataclass(frozen=True)
class VersionSummary:
    name: str
    summarise: Summarise
    #: What a version without data gets (same keys as a real summary).
    empty: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSource:
    """A kind of evaluation dataset (JSON ``{"kind": kind, ...}``, stored with the figures).

    ``resolve(ids)`` turns the ids an admin named into a dataset, ``load(dataset)`` reads it
    as ``(recordings, description)`` in the worker, and ``default()`` offers a dataset to use
    when the admin named none (or None). ``resolve`` and ``load`` raise ``ValueError`` with a
    message for admins when an id is unusable.

    ``truth`` says what the recordings carry: ``labels`` (phase labels; scored by
    ``inference.scoring.evaluate_model``, the figures replace the version's ``metrics``) or
    ``sets`` (``load`` gives ``inference.scoring.SetTruth`` items, true set counts without
    labels; scored by ``inference.scoring.evaluate_on_sets`` and stored under
    ``metrics[kind]``, beside the labelled or LOSO figures).
    """

    kind: str
    resolve: Callable[[list[str]], dict]
    load: Callable[[dict], tuple[list[Recording] | list[SetTruth], dict]]
    default: Callable[[], dict | None] = lambda: None
    truth: str = "labels"


_summaries: dict[str, VersionSummary] = {}
_sources: dict[str, DatasetSource] = {}


def register_version_summary(summary: VersionSummary) -> None:
    """Add (or replace, by name) a per-version summary."""
    _summaries[summary.name] = summary


def register_dataset_source(source: DatasetSource) -> None:
    """Add (or replace, by kind) an evaluation dataset source."""
    _sources[source.kind] = source


def version_summaries(name: str, versions: Sequence[ModelVersion]) -> dict[int, dict]:
    """``{version pk: summary}`` for every version (``empty`` where the source has nothing);
    ``{}`` values when no app registered ``name``."""
    summary = _summaries.get(name)
    if summary is None:
        return {v.pk: {} for v in versions}
    found = summary.summarise(versions) if versions else {}
    return {v.pk: found.get(v.pk, summary.empty) for v in versions}


def dataset_source(kind: str) -> DatasetSource | None:
    return _sources.get(kind)


def dataset_sources() -> list[DatasetSource]:
    """Registered sources, in registration order."""
    return list(_sources.values())
