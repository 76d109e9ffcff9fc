"""Markdown report with PNG figures for a LOSO evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: Phase colours for the plots: break grey, first halves light, second halves dark.
_COLOURS = {
    "break": "#dddddd",
    "burpee.first_half": "#9ecae1",
    "burpee.second_half": "#3182bd",
    "squat.first_half": "#a1d99b",
    "squat.second_half": "#31a354",
    "sit_up.first_half": "#fdae6b",
    "sit_up.second_half": "#e6550d",
}


def _plot_confusion(plt, report: dict, png: Path) -> None:
    labels = report["hyperparameters"]["labels"]
    confusion = np.sum([np.array(f["confusion_7"]) for f in report["folds"].values()], axis=0)
    share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted phase")
    ax.set_ylabel("true phase")
    ax.set_title("LOSO confusion (rows: share of true phase)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _phase_strip(ax, names, rate_hz: float, y: float) -> None:
    from inference.counting import runs

    for value, start, stop in runs(np.asarray(names)):
        ax.axvspan(start / rate_hz, stop / rate_hz, ymin=y, ymax=y + 0.12, color=_COLOURS.get(str(value), "#999"), lw=0)


def plot_session(
    plt, example: tuple, *, labels: list[str], channels: list[str], rate_hz: float, png: Path, title: str
) -> None:
    """Signal (user acceleration magnitude, gyroscope magnitude), true and predicted phases,
    and counted repetitions of one held-out recording (``channels``: the columns of its x)."""
    from inference.counting import count_probabilities
    from inference.cycles import gravity_columns

    prepared, probs, params = example
    pred, sets = count_probabilities(probs, labels, rate_hz, params, gravity_columns(prepared.x, tuple(channels)))
    t = np.arange(len(prepared.x)) / rate_hz
    fig, ax = plt.subplots(figsize=(14, 4))
    acc = np.linalg.norm(prepared.x[:, 3:6], axis=1) if prepared.x.shape[1] >= 6 else prepared.x[:, 0]
    gyro = np.linalg.norm(prepared.x[:, -3:], axis=1)
    ax.plot(t, acc / max(acc.max(), 1e-6), lw=0.6, color="k", label="|user acceleration| (scaled)")
    ax.plot(t, gyro / max(gyro.max(), 1e-6) * 0.8, lw=0.6, color="tab:purple", label="|gyroscope| (scaled)")
    _phase_strip(ax, prepared.labels, rate_hz, 0.86)
    _phase_strip(ax, np.asarray(labels)[pred], rate_hz, 0.72)
    for s in sets:
        for r in s.repetitions:
            ax.axvline(r.end_s, color="red", lw=0.7, alpha=0.7)
    ax.set_ylim(0, 1.15)
    ax.set_xlim(0, t[-1])
    ax.text(0.002, 0.985, "true phases", transform=ax.transAxes, fontsize=7, va="top")
    ax.text(0.002, 0.845, "predicted phases", transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xlabel("time (s); red lines: end of each counted repetition")
    ax.set_title(title + " - " + ", ".join(f"{s.exercise} {s.reps}" for s in sets), fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def write_report(report: dict, path: Path, examples: list | None = None) -> Path:
    """Write ``path`` (Markdown), ``<stem>-confusion.png``, example plots and ``<stem>.json``.

    ``examples``: ``(prepared, probabilities, counting_params)`` of held-out recordings
    (as collected by :func:`inference.lab.evaluate.loso` with ``keep``), one plot each.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.lab.evaluate import markdown

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_name(path.stem + "-confusion.png")
    _plot_confusion(plt, report, png)
    figures = [f"![confusion matrix]({png.name})"]
    labels = report["hyperparameters"]["labels"]
    rate = float(report["hyperparameters"]["sample_rate_hz"])
    channels = report["hyperparameters"]["channels"]
    for i, example in enumerate(examples or []):
        name = path.with_name(f"{path.stem}-session-{i + 1}.png")
        title = f"held-out athlete {example[0].subject}"
        plot_session(plt, example, labels=labels, channels=channels, rate_hz=rate, png=name, title=title)
        figures.append(f"![{title}]({name.name})")
    path.with_suffix(".json").write_text(json.dumps(report, indent=1))
    path.write_text(
        "# Leave-one-subject-out evaluation\n\n"
        + markdown(report)
        + "\n\n"
        + "\n\n".join(figures)
        + f"\n\nHyperparameters: `{json.dumps(report['hyperparameters'])}`\n"
    )
    return path
