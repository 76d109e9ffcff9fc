"""Live accuracy per model version (a selector; staff only: the model registry shows it).

Registered as the registry's ``live_metrics`` version summary (:mod:`fitness.mlmodels.extensions`)
by this app's ``ready()``. What counts as a review is defined in
:mod:`fitness.workouts.services.corrections`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Abs, Coalesce, Least

from inference.scoring import set_count_figures

from .models import ExerciseSet, SensorSession

if TYPE_CHECKING:
    from fitness.mlmodels.models import ModelVersion

#: A set the user confirmed, corrected or added.
_REVIEWED = Q(reviewed_at__isnull=False)
#: A reviewed set with repetitions: a true set, as ``inference.scoring`` counts them.
_TRUE = _REVIEWED & Q(reps__gt=0)
_COUNTED = Q(counted_reps__gt=0)
#: A set's count error weighs at most this many repetitions in ``count_mae``: one user's
#: corrections (up to 10,000 repetitions a set) cannot swing a version's figures without
#: bound; a set this far off is a failure of the set either way (docs/reliability.md).
MAX_SET_ERROR = 20
_TALLIES = (
    "sets_counted", "sets_reviewed", "sets_corrected", "true_sets", "exact", "within_1", "abs_error",
    "phantom_sets", "phantom_reps", "missed_sets",
)  # fmt: skip


def _figures(t: dict) -> dict:
    figures = set_count_figures(
        sets=t["true_sets"], exact=t["exact"], within_1=t["within_1"], abs_error=t["abs_error"], missed=t["missed_sets"]
    )
    return {
        "sets_counted": t["sets_counted"],
        "sets_reviewed": t["sets_reviewed"],
        "sets_corrected": t["sets_corrected"],
        **figures,
        "phantom_sets": t["phantom_sets"],
        "phantom_reps": t["phantom_reps"],
    }


#: The live metrics of a version without counted sets (the same keys as a real one).
NO_LIVE_METRICS = {**_figures(dict.fromkeys(_TALLIES, 0)), "by_exercise": {}, "by_method": {}}


def live_metrics(versions: Sequence[ModelVersion]) -> dict[int, dict]:
    """How each version did on real uploads, judged by the users' reviews (one aggregate query).

    Over the sets of ``done`` sessions the version counted (``SensorSession.model_version``):

    - ``sets_counted``: sets it counted (``counted_reps`` > 0); ``sets_reviewed``: of those, the
      reviewed; ``sets_corrected``: of those, the ones whose ``reps`` differ from ``counted_reps``;
    - over true sets (reviewed, ``reps`` > 0, user-added ones included), the figures of
      :func:`inference.scoring.set_count_figures`: ``sets``, ``sets_exact``, ``sets_within_1``,
      ``count_mae`` (each set's error capped at ``MAX_SET_ERROR`` repetitions, so that no user's
      corrections move it by more than that), ``missed_sets`` (counted 0: added by the user,
      or not found by a re-count);
    - ``phantom_sets``: counted sets the user corrected to 0, and their ``phantom_reps``;

    and the same per exercise (``by_exercise``) and per counting method (``by_method``; a set
    only the user found is ``manual``). Versions without sets are left out of the answer.
    """
    pk_of = {v.version: v.pk for v in versions}
    rows = (
        ExerciseSet.objects.filter(session__model_version__in=list(pk_of), session__status=SensorSession.Status.DONE)
        .alias(error=Least(Abs(F("reps") - Coalesce("counted_reps", 0)), Value(MAX_SET_ERROR)))
        .values("session__model_version", "exercise", "method")
        .annotate(
            sets_counted=Count("id", filter=_COUNTED),
            sets_reviewed=Count("id", filter=_COUNTED & _REVIEWED),
            sets_corrected=Count("id", filter=_COUNTED & _REVIEWED & ~Q(reps=F("counted_reps"))),
            true_sets=Count("id", filter=_TRUE),
            exact=Count("id", filter=_TRUE & Q(error=0)),
            within_1=Count("id", filter=_TRUE & Q(error__lte=1)),
            abs_error=Coalesce(Sum("error", filter=_TRUE), 0),
            phantom_sets=Count("id", filter=_COUNTED & _REVIEWED & Q(reps=0)),
            phantom_reps=Coalesce(Sum("counted_reps", filter=_COUNTED & _REVIEWED & Q(reps=0)), 0),
            missed_sets=Count("id", filter=_TRUE & (Q(counted_reps__isnull=True) | Q(counted_reps=0))),
        )
        .order_by()
    )
    tallies: dict[int, dict] = {}
    for row in rows:  # one row per (version, exercise, method), not per set
        pk = pk_of[row["session__model_version"]]
        version = tallies.setdefault(pk, {"all": dict.fromkeys(_TALLIES, 0), "by_exercise": {}, "by_method": {}})
        for bucket in (
            version["all"],
            version["by_exercise"].setdefault(row["exercise"], dict.fromkeys(_TALLIES, 0)),
            version["by_method"].setdefault(row["method"], dict.fromkeys(_TALLIES, 0)),
        ):
            for name in _TALLIES:
                bucket[name] += row[name]
    return {
        pk: {
            **_figures(t["all"]),
            "by_exercise": {name: _figures(v) for name, v in sorted(t["by_exercise"].items())},
            "by_method": {name: _figures(v) for name, v in sorted(t["by_method"].items())},
        }
        for pk, t in tallies.items()
    }
