"""The registry's hooks: what it does with and without the apps that build on it."""

from __future__ import annotations

import pytest

from fitness.mlmodels import extensions, services
from fitness.mlmodels.models import ModelVersion


@pytest.fixture
def bare_registry(monkeypatch):
    """The registry as if no other app had registered anything."""
    monkeypatch.setattr(extensions, "_summaries", {})
    monkeypatch.setattr(extensions, "_sources", {})


def version(name: str) -> ModelVersion:
    return ModelVersion.objects.create(version=name, file=f"models/{name}.keras", checksum=name.ljust(64, "0"),
                                       size_bytes=1, metadata={})  # fmt: skip


def test_the_workouts_app_registers_shadow_summaries_and_session_datasets():
    assert extensions.dataset_source("sessions") is not None
    assert "shadow" in extensions._summaries


@pytest.mark.django_db
def test_without_other_apps_evaluation_uses_the_manifest_and_refuses_sessions(bare_registry, settings):
    assert services.evaluation_dataset() == {"kind": "manifest", "manifest": str(settings.FITNESS_EVALUATION_MANIFEST)}
    with pytest.raises(services.RegistryError, match="not available"):
        services.evaluation_dataset(session_ids=["00000000-0000-0000-0000-000000000000"])


@pytest.mark.django_db
def test_a_dataset_of_an_unknown_kind_fails_the_evaluation_with_the_reason(bare_registry, register, model_files):
    v = register(model_files["a"])
    services.model_version_evaluate(version_id=v.pk, dataset={"kind": "sessions", "sessions": []})
    v.refresh_from_db()
    assert v.evaluation_status == "failed"
    assert "no app provides evaluation datasets of kind 'sessions'" in v.evaluation_error


@pytest.mark.django_db
def test_summaries_are_asked_once_per_list_and_fill_versions_without_data(monkeypatch):
    a, b = version("a"), version("b")
    calls = []

    def summarise(versions):
        calls.append([v.pk for v in versions])
        return {a.pk: {"n": 3}}

    monkeypatch.setattr(extensions, "_summaries", {})
    extensions.register_version_summary(extensions.VersionSummary("demo", summarise, empty={"n": 0}))
    assert extensions.version_summaries("demo", [a, b]) == {a.pk: {"n": 3}, b.pk: {"n": 0}}
    assert extensions.version_summaries("demo", []) == {}
    assert calls == [[a.pk, b.pk]]
    assert extensions.version_summaries("missing", [a]) == {a.pk: {}}


@pytest.mark.django_db
def test_the_version_list_asks_the_shadow_summary_once(staff_api, monkeypatch, register, model_files):
    for name in ("a", "b", "silent"):
        register(model_files[name])
    calls = []
    real = extensions._summaries["shadow"]

    def counting(versions):
        calls.append(len(versions))
        return real.summarise(versions)

    monkeypatch.setitem(extensions._summaries, "shadow", extensions.VersionSummary("shadow", counting, real.empty))
    body = staff_api.get("/api/v1/model-versions/").json()
    rows = body["results"] if isinstance(body, dict) else body
    assert len(rows) == 3
    assert all(r["shadow"] == {"sessions": 0, "agreed": 0, "agreement": None, "errors": 0} for r in rows)
    assert calls == [3]
