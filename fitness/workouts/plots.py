"""The session plot: the recorded signal with counted sets and repetitions marked.

Rendered lazily on the first request for a counted session and kept in Django's
cache. The cache key holds the session's ``finished_at``, which every (re)count
changes, and the entry the digest of the sets it was drawn from, which every
correction changes: neither a reprocessed nor a corrected session shows a stale
plot. Deleting a session or an account forgets its entries
(:func:`forget_plots_on_commit`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import numpy as np
from django.core.cache import cache
from django.db import transaction

from inference.io import BREAK, CHANNEL_UNITS, Recording, read_recording

from .models import ExerciseSet, SensorSession

#: Bump when the drawing changes, so that cached plots are rendered again.
PLOT_VERSION = 1
PLOT_CACHE_SECONDS = 7 * 24 * 3600
#: Longest series drawn per channel; longer recordings are decimated for drawing only.
MAX_POINTS = 6000
_SET_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
_PHASE_COLOURS = {"first_half": "#55a868", "second_half": "#c44e52"}


class SessionNotCountedError(Exception):
    """The session has no counted result to draw (not ``done``)."""


def plot_cache_key(session: SensorSession) -> str:
    """The cache key of a session's plot: one per count; its entry is ``(sets_digest, png)``."""
    stamp = session.finished_at.isoformat() if session.finished_at else "none"
    return f"session-plot:v{PLOT_VERSION}:{session.pk}:{stamp}"


def sets_digest(session: SensorSession, sets: Iterable[ExerciseSet]) -> str:
    """What the plot draws of the counting result (total, and each set's exercise, reps and
    times), as a short hex digest: any correction, added or deleted set changes it."""
    parts = [str(session.total_reps)]
    parts += [f"{s.pk}:{s.index}:{s.exercise}:{s.reps}:{s.start_s!r}:{s.end_s!r}" for s in sets]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def forget_plots_on_commit(sessions: Iterable[SensorSession]) -> None:
    """Drop the cached plots of these sessions once the current transaction commits
    (call it before deleting them: the keys are taken now)."""
    keys = [plot_cache_key(s) for s in sessions]
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys))


def session_plot_png(*, session: SensorSession) -> bytes:
    """The PNG of a ``done`` session, from the cache or rendered now and cached.

    Raises:
        SessionNotCountedError: the session is not ``done``.
        FileNotFoundError: the stored recording is gone.
        RecordingError: the stored recording cannot be read any more.
    """
    if session.status != SensorSession.Status.DONE:
        raise SessionNotCountedError(session.status)
    key = plot_cache_key(session)
    sets = list(ExerciseSet.objects.filter(session=session).order_by("index"))
    digest = sets_digest(session, sets)
    cached = cache.get(key)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == digest:
        return cached[1]
    sets = list(ExerciseSet.objects.filter(session=session).prefetch_related("repetitions").order_by("index"))
    with session.file.open("rb") as fh:
        recording = read_recording(fh, session.format)
    title = f"{session.total_reps or 0} repetitions in {len(sets)} set(s)"
    if session.model_version:
        title += f" (model {session.model_version})"
    png = render_session_plot(recording=recording, sets=sets, title=title)
    cache.set(key, (digest, png), PLOT_CACHE_SECONDS)
    return png


def _channel_groups(recording: Recording) -> list[tuple[str, list[int]]]:
    """Channel indices grouped by unit (one axes each), in the recording's order."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(recording.channels):
        groups.setdefault(CHANNEL_UNITS.get(name, "?"), []).append(i)
    return list(groups.items())


def _phase_runs(labels: np.ndarray) -> list[tuple[int, int, str]]:
    """``(first, last, half)`` index runs of labelled phases (``break`` left out)."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            label = str(labels[start])
            if label != BREAK and "." in label:
                runs.append((start, i - 1, label.rsplit(".", 1)[1]))
            start = i
    return runs


def render_session_plot(*, recording: Recording, sets: list[ExerciseSet], title: str = "") -> bytes:
    """Draw the channels against time with sets shaded and each counted repetition marked.

    Args:
        recording: the stored recording (time in s from the first sample; channels in
            ``CHANNEL_UNITS``), one axes per unit.
        sets: the session's counted sets with ``repetitions`` (``start_s``/``end_s`` in
            seconds from the first sample).
        title: figure title.

    Returns:
        PNG bytes. Reference phase labels, where the recording carries them (Exermote),
        are drawn as a strip below the signal.
    """
    # Imported here: only processes that draw pay for matplotlib. The object API with the
    # Agg canvas keeps no global pyplot state, so concurrent requests do not interfere.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    groups = _channel_groups(recording)
    labels = recording.labels
    has_phases = labels is not None and len(labels) == recording.n_samples
    heights = [3] * len(groups) + ([0.6] if has_phases else [])
    fig = Figure(figsize=(12, 1.2 + 2.2 * len(groups) + (0.6 if has_phases else 0)), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(heights), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]

    step = max(1, recording.n_samples // MAX_POINTS)
    t = recording.time_s[::step]
    exercises = sorted({s.exercise for s in sets})
    colour = {ex: _SET_COLOURS[i % len(_SET_COLOURS)] for i, ex in enumerate(exercises)}
    for ax, (unit, indices) in zip(axes, groups, strict=False):
        for i in indices:
            ax.plot(t, recording.samples[::step, i], linewidth=0.7, label=recording.channels[i])
        ax.set_ylabel(unit)
        ax.legend(loc="upper right", fontsize=7, ncol=min(len(indices), 6), framealpha=0.6)
        for exercise_set in sets:
            ax.axvspan(exercise_set.start_s, exercise_set.end_s, color=colour[exercise_set.exercise], alpha=0.08)
            for k, rep in enumerate(exercise_set.repetitions.all()):
                ax.axvspan(rep.start_s, rep.end_s, color=colour[exercise_set.exercise], alpha=0.28 if k % 2 else 0.18)
    top = axes[0]
    for exercise_set in sets:
        for k, rep in enumerate(exercise_set.repetitions.all()):
            top.annotate(
                str(k + 1),
                xy=((rep.start_s + rep.end_s) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=6,
            )
    if has_phases:
        strip = axes[-1]
        for first, last, half in _phase_runs(np.asarray(labels)):
            end = recording.time_s[min(last + 1, recording.n_samples - 1)]
            strip.axvspan(recording.time_s[first], end, color=_PHASE_COLOURS.get(half, "grey"), alpha=0.6)
        strip.set_yticks([])
        strip.set_ylabel("phases", rotation=0, ha="right", va="center", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(float(recording.time_s[0]), float(recording.time_s[-1]))
    handles = [Patch(color=colour[ex], alpha=0.4, label=f"{ex} repetitions") for ex in exercises]
    if has_phases:
        handles += [
            Patch(color=c, alpha=0.6, label=f"labelled {h.replace('_', ' ')}") for h, c in _PHASE_COLOURS.items()
        ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 if handles else 0, 1, 0.97))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
