"""The generic counter's evaluation over every labelled CaRa and muvr set."""

from __future__ import annotations

import pytest

from inference.lab.evaluate_counter import DEFAULT_DATA, evaluate, labelled_sets, markdown, summarise


def test_summary_of_known_rows():
    rows = [{"true": 10, "pred": 10}, {"true": 10, "pred": 11}, {"true": 20, "pred": 10}, {"true": 5, "pred": 0}]
    s = summarise(rows)
    assert s["sets"] == 4
    assert s["exact"] == 0.25
    assert s["within1"] == 0.5
    assert s["mae"] == pytest.approx((0 + 1 + 10 + 5) / 4)
    assert s["mre"] == pytest.approx((0 + 0.1 + 0.5 + 1.0) / 4)
    assert summarise([])["sets"] == 0


@pytest.mark.skipif(not (DEFAULT_DATA / "muvr").is_dir(), reason="../shared/data/muvr is absent")
def test_counts_real_sets_with_their_names_as_truth():
    items = [s for s in labelled_sets() if s.dataset == "muvr"]
    assert len(items) == 284
    assert all(s.true > 0 for s in items)
    chosen = {items[0].path, items[-1].path}
    rows, report = evaluate(lambda recording, hint: 7, only=lambda s: s.path in chosen)
    assert [r["pred"] for r in rows] == [7, 7]
    assert report["overall"]["muvr"]["sets"] == 2
    assert report["overall"]["muvr"]["mae"] == pytest.approx(sum(abs(7 - r["true"]) for r in rows) / 2)
    assert "| muvr | 2 |" in markdown(report)
