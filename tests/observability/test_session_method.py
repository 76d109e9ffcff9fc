"""The ``method`` label of ``fitness_sessions_total``: which counter counted a session."""

from __future__ import annotations

import pytest

from fitness.observability.recording import session_method
from fitness.workouts.models import ExerciseSet
from tests.factories import ExerciseSetFactory, SensorSessionFactory

pytestmark = pytest.mark.django_db

M = ExerciseSet.Method


@pytest.mark.parametrize(
    ("methods", "label"),
    [
        ([], "none"),
        ([M.MANUAL], "none"),
        ([M.PEAKS], "generic"),
        ([M.LEARNED, M.MANUAL], "learned"),
        ([M.PEAKS, M.LEARNED], "learned"),
        ([M.LEARNED, M.CLASSIFIER], "classifier"),
    ],
)
def test_the_label_names_the_counter(methods, label):
    session = SensorSessionFactory()
    for i, method in enumerate(methods):
        ExerciseSetFactory(session=session, user=session.user, index=i, method=method)
    assert session_method(session) == label
