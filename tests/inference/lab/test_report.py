import numpy as np

from inference.counting import CountingParams
from inference.lab.report import write_report
from inference.lab.train import PHASE_LABELS, Hyperparameters
from inference.scoring import Labelled, summarise


def test_report_writes_markdown_confusion_and_session_plots(tmp_path):
    n = 300
    y = np.zeros(n, np.int64)
    for start in range(40, 260, 40):
        y[start : start + 10] = 3  # squat.first_half
        y[start + 10 : start + 20] = 4  # squat.second_half
    names = np.asarray(PHASE_LABELS)[y]
    probs = np.full((n, 7), 0.01, np.float32)
    probs[np.arange(n), y] = 0.94
    x = np.random.default_rng(0).normal(size=(n, 9)).astype(np.float32)
    prepared = Labelled(x=x, y=y, labels=names, set_break=np.zeros(n, bool), subject="3")
    params = CountingParams(min_run_s=dict.fromkeys(PHASE_LABELS, 0.3), set_gap_s=6.0)
    rows = [{"exercise": "squat", "true": 6, "pred": 6, "start_s": 4.0}]
    fold = summarise(rows, phantom=0, rest_s=10.0, correct7=n, correct4=n, frames=n)
    fold["confusion_7"] = np.diag(np.bincount(y, minlength=7)).tolist()
    report = {"hyperparameters": Hyperparameters().to_dict(), "folds": {"3": fold}, "overall": fold}

    path = write_report(report, tmp_path / "loso.md", examples=[(prepared, probs, params)])

    text = path.read_text()
    assert "| 3 | 100.0% |" in text
    assert "loso-confusion.png" in text
    assert "loso-session-1.png" in text
    for name in ("loso-confusion.png", "loso-session-1.png", "loso.json"):
        assert (tmp_path / name).stat().st_size > 1000
