"""Epochs to the target validation accuracy, and the cells that never reached it."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from conftest import STUDY_FACTORS, figure_texts

from optreg.report import plots


def test_time_to_target_labels_seeds_and_unreached_cells(study_frames):
    summary = study_frames["problems"]["summary"].copy()
    tuned = summary["protocol"] == "tuned"
    slow = tuned & (summary["problem"] == "digits_mlp") & (summary["optimizer"] == "sgd")
    summary.loc[slow, "reached_target"] = 0
    summary.loc[slow, [c for c in summary if c.startswith("epochs_to_target_")]] = math.nan
    fig = plots.make_figure("time_to_target", {"summary": summary}, STUDY_FACTORS["problems"])
    texts = figure_texts(fig)
    assert "target validation accuracy" in fig.get_suptitle()
    plt.close(fig)
    assert sum(t.startswith("not reached") for t in texts) == 1
    for _, row in summary[tuned & ~slow].iterrows():
        assert f"{row['reached_target']}/{row['seeds']} seeds" in texts
