"""Result types shared by the counters and the pipeline (plain data, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Method = Literal["classifier", "peaks", "learned"]


class CountingError(Exception):
    """A recording that the chosen method cannot count; the message is shown to the user."""


@dataclass(frozen=True)
class Repetition:
    """One repetition: seconds from the recording's first sample, ``start_s < end_s``."""

    start_s: float
    end_s: float

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


@dataclass(frozen=True)
class CountedSet:
    """Consecutive repetitions of one exercise, separated by less than the set gap."""

    exercise: str
    method: Method
    repetitions: tuple[Repetition, ...]
    #: Whether an exemplar (:class:`inference.density.Exemplar`) decided what one repetition is.
    used_exemplar: bool = False

    @property
    def reps(self) -> int:
        return len(self.repetitions)

    @property
    def start_s(self) -> float:
        return self.repetitions[0].start_s

    @property
    def end_s(self) -> float:
        return self.repetitions[-1].end_s

    def to_dict(self, *, with_repetitions: bool = True) -> dict:
        out = {
            "exercise": self.exercise,
            "reps": self.reps,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "method": self.method,
        }
        if with_repetitions:
            out["repetitions"] = [r.to_dict() for r in self.repetitions]
        return out


@dataclass(frozen=True)
class CountResult:
    """Everything counted in one recording, in time order."""

    sets: tuple[CountedSet, ...] = field(default_factory=tuple)
    model_version: str | None = None

    @property
    def total_reps(self) -> int:
        return sum(s.reps for s in self.sets)

    def to_dict(self, *, with_repetitions: bool = True) -> dict:
        return {
            "total_reps": self.total_reps,
            "model_version": self.model_version,
            "sets": [s.to_dict(with_repetitions=with_repetitions) for s in self.sets],
        }
