"""Markdown report with PNG figures for a LOSO evaluation (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_report(report: dict, path: Path) -> Path:
    """Write ``path`` (Markdown), ``<stem>-confusion.png`` and ``<stem>.json`` beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inference.evaluate import markdown

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    png = path.with_name(path.stem + "-confusion.png")
    fig.savefig(png, dpi=100)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps(report, indent=1))
    path.write_text(
        "# Leave-one-subject-out evaluation\n\n"
        + markdown(report)
        + f"\n\n![confusion matrix]({png.name})\n\nHyperparameters: `{json.dumps(report['hyperparameters'])}`\n"
    )
    return path
