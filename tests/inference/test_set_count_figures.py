"""``set_count_figures`` (tallies, what the registry's live metrics use) against ``summarise`` (rows)."""

import pytest

from inference.scoring import set_count_figures, summarise


def test_tallies_give_the_figures_summarise_gives_for_the_rows():
    rows = [{"true": t, "pred": p} for t, p in [(10, 10), (8, 9), (5, 0), (12, 7), (3, 3), (6, 5)]]
    errors = [abs(r["pred"] - r["true"]) for r in rows]
    tallied = set_count_figures(
        sets=len(rows),
        exact=sum(e == 0 for e in errors),
        within_1=sum(e <= 1 for e in errors),
        abs_error=sum(errors),
        missed=sum(r["pred"] == 0 for r in rows),
    )
    summary = summarise(rows, phantom=0, rest_s=0.0, correct7=0, correct4=0, frames=0)
    for key in ("sets", "sets_exact", "sets_within_1", "count_mae", "missed_sets"):
        assert tallied[key] == pytest.approx(summary[key]), key
    assert (tallied["sets_exact"], tallied["sets_within_1"], tallied["missed_sets"]) == (2 / 6, 4 / 6, 1)


def test_without_true_sets_the_shares_are_unknown():
    assert set_count_figures(sets=0, exact=0, within_1=0, abs_error=0, missed=0) == {
        "sets": 0,
        "sets_exact": None,
        "sets_within_1": None,
        "count_mae": None,
        "missed_sets": 0,
    }
