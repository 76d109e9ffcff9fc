"""The exercise catalog: the ids a hint may name, their Health Connect segment types, the method per exercise.

Ids are Health Connect's segment type names snake_cased, e.g.
``EXERCISE_SEGMENT_TYPE_LAT_PULL_DOWN`` -> ``lat_pull_down``, with the integer type id of the
Jetpack client (``androidx.health.connect.client.records.ExerciseSegment``, 1.1; the platform
class ``android.health.connect.datatypes.ExerciseSegmentType`` numbers them differently). The
catalog holds the segment types that Health Connect allows in a strength-training session
(its ``EXERCISE_SEGMENTS``) except ``plank``, which has no repetitions, and a few common
exercises that Health Connect lacks (push-up, dip, chin-up, ...), which export as
``EXERCISE_SEGMENT_TYPE_OTHER_WORKOUT``. Cardio, swimming, rest and pause segments are left out:
nothing here counts them.

``unknown`` is valid everywhere: count without knowing the movement (exported as
``EXERCISE_SEGMENT_TYPE_UNKNOWN``). Ids are stable: statistics, history and exports group by
them, so an id is never renamed or removed, only added.

This module is the serving path's (no Django): the API, the CLI and the pipeline read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from inference.spec import ModelSpec

#: Health Connect ``ExerciseSegment.EXERCISE_SEGMENT_TYPE_UNKNOWN``: the movement is not known.
HEALTH_CONNECT_UNKNOWN = 0
#: ``EXERCISE_SEGMENT_TYPE_OTHER_WORKOUT``: a known exercise that Health Connect has no type for.
HEALTH_CONNECT_OTHER_WORKOUT = 38
#: ``ExerciseSessionRecord.EXERCISE_TYPE_STRENGTH_TRAINING``: a session type that accepts every
#: segment type of the catalog (Health Connect checks segment/session compatibility).
HEALTH_CONNECT_STRENGTH_TRAINING = 70

UNKNOWN = "unknown"
#: Exercises always counted by the generic counter, even by a model with phases for them
#: (jump rope: the wrist's rotation follows the rope; measured in docs/accuracy.md).
GENERIC_ONLY = frozenset({"jump_rope"})

CountingMethod = Literal["classifier", "generic"]
#: The values of :data:`CountingMethod`, in order (the API's enum).
COUNTING_METHODS = ("classifier", "generic")


@dataclass(frozen=True)
class CatalogExercise:
    """One exercise of the catalog.

    Attributes:
        id: stable snake_case id (what hints, sets and statistics use).
        name: display name (English).
        health_connect_type: ``ExerciseSegment.segmentType`` for exports (Jetpack numbering).
        in_health_connect: Health Connect has a segment type of this name (``id`` is its name).
    """

    id: str
    name: str
    health_connect_type: int
    in_health_connect: bool = True

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "health_connect_type": self.health_connect_type}


def _hc(type_id: int, exercise_id: str, name: str) -> CatalogExercise:
    return CatalogExercise(exercise_id, name, type_id)


def _other(exercise_id: str, name: str) -> CatalogExercise:
    return CatalogExercise(exercise_id, name, HEALTH_CONNECT_OTHER_WORKOUT, in_health_connect=False)


#: The catalog, by id. Health Connect's ids are ``EXERCISE_SEGMENT_TYPE_<ID upper-cased>``.
EXERCISES: dict[str, CatalogExercise] = {
    e.id: e
    for e in (
        CatalogExercise(UNKNOWN, "Unknown exercise", HEALTH_CONNECT_UNKNOWN),
        _hc(1, "arm_curl", "Arm curl"),
        _hc(2, "back_extension", "Back extension"),
        _hc(3, "ball_slam", "Ball slam"),
        _hc(4, "barbell_shoulder_press", "Barbell shoulder press"),
        _hc(5, "bench_press", "Bench press"),
        _hc(6, "bench_sit_up", "Bench sit-up"),
        _hc(9, "burpee", "Burpee"),
        _hc(10, "crunch", "Crunch"),
        _hc(11, "deadlift", "Deadlift"),
        _hc(12, "double_arm_triceps_extension", "Double-arm triceps extension"),
        _hc(13, "dumbbell_curl_left_arm", "Dumbbell curl (left arm)"),
        _hc(14, "dumbbell_curl_right_arm", "Dumbbell curl (right arm)"),
        _hc(15, "dumbbell_front_raise", "Dumbbell front raise"),
        _hc(16, "dumbbell_lateral_raise", "Dumbbell lateral raise"),
        _hc(17, "dumbbell_row", "Dumbbell row"),
        _hc(18, "dumbbell_triceps_extension_left_arm", "Dumbbell triceps extension (left arm)"),
        _hc(19, "dumbbell_triceps_extension_right_arm", "Dumbbell triceps extension (right arm)"),
        _hc(20, "dumbbell_triceps_extension_two_arm", "Dumbbell triceps extension (two arms)"),
        _hc(22, "forward_twist", "Forward twist"),
        _hc(23, "front_raise", "Front raise"),
        _hc(25, "hip_thrust", "Hip thrust"),
        _hc(26, "hula_hoop", "Hula hoop"),
        _hc(27, "jumping_jack", "Jumping jack"),
        _hc(28, "jump_rope", "Jump rope"),
        _hc(29, "kettlebell_swing", "Kettlebell swing"),
        _hc(30, "lateral_raise", "Lateral raise"),
        _hc(31, "lat_pull_down", "Lat pull-down"),
        _hc(32, "leg_curl", "Leg curl"),
        _hc(33, "leg_extension", "Leg extension"),
        _hc(34, "leg_press", "Leg press"),
        _hc(35, "leg_raise", "Leg raise"),
        _hc(36, "lunge", "Lunge"),
        _hc(37, "mountain_climber", "Mountain climber"),
        _hc(42, "pull_up", "Pull-up"),
        _hc(43, "punch", "Punch"),
        _hc(48, "shoulder_press", "Shoulder press"),
        _hc(49, "single_arm_triceps_extension", "Single-arm triceps extension"),
        _hc(50, "sit_up", "Sit-up"),
        _hc(51, "squat", "Squat"),
        _hc(63, "upper_twist", "Upper twist"),
        _hc(65, "weightlifting", "Weightlifting"),
        # Common exercises without a Health Connect segment type.
        _other("barbell_row", "Barbell row"),
        _other("box_jump", "Box jump"),
        _other("calf_raise", "Calf raise"),
        _other("chest_fly", "Chest fly"),
        _other("chin_up", "Chin-up"),
        _other("dip", "Dip"),
        _other("glute_bridge", "Glute bridge"),
        _other("high_knees", "High knees"),
        _other("push_up", "Push-up"),
        _other("shrug", "Shrug"),
        _other("step_up", "Step-up"),
        _other("thruster", "Thruster"),
        _other("triceps_pushdown", "Triceps pushdown"),
        _other("upright_row", "Upright row"),
        _other("wall_ball", "Wall ball"),
    )
}

#: Where a client finds the list (named in every refusal of an id outside it).
WHERE_THE_LIST_IS = "GET /api/v1/exercises/ or `python -m inference exercises`"


def is_known(exercise: str) -> bool:
    """Whether ``exercise`` is a catalog id (``unknown`` included)."""
    return exercise in EXERCISES


def health_connect_type(exercise: str) -> int:
    """Health Connect ``segmentType`` of a catalog id; ids outside the catalog map to unknown (0)."""
    entry = EXERCISES.get(exercise)
    return entry.health_connect_type if entry is not None else HEALTH_CONNECT_UNKNOWN


def unknown_exercise_message(exercise: str) -> str:
    """Why a hint is refused: ``'<id>' is not in the exercise catalog; see <where the list is>``."""
    return f"{exercise!r} is not in the exercise catalog; see {WHERE_THE_LIST_IS} for the ids"


def counting_method(exercise: str | None, spec: ModelSpec | None) -> CountingMethod:
    """What counts an exercise for a recording that has ``spec``'s channels.

    ``classifier`` where the model has phases for the exercise, or for no hint / ``unknown``
    (the classifier then finds whichever of its exercises were done); ``generic`` for every
    other exercise, for :data:`GENERIC_ONLY`, and without a model. A recording that lacks the
    model's channels is always counted by the generic counter
    (:func:`inference.pipeline.choose_method`).

    Args:
        exercise: a catalog id, ``unknown``, or None / empty for no hint.
        spec: the model's specification (the production version's in the API).
    """
    if spec is None or exercise in GENERIC_ONLY:
        return "generic"
    if not exercise or exercise == UNKNOWN or exercise in spec.exercises:
        return "classifier"
    return "generic"


def catalog_with_methods(spec: ModelSpec | None) -> list[dict]:
    """The catalog sorted by id, each entry with the method that counts it under ``spec``.

    Returns ``[{"id", "name", "method", "health_connect_type"}]``, ``unknown`` first.
    """
    ordered = sorted(EXERCISES.values(), key=lambda e: (e.id != UNKNOWN, e.id))
    return [{**e.to_dict(), "method": counting_method(e.id, spec)} for e in ordered]
