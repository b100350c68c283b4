"""Validation accuracy across the learning-rate grid: curves, chosen and diverged rates."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from conftest import STUDY_FACTORS, figure_panels, tangled_panels

from optreg.report import plots


def test_lr_sensitivity_labels_of_a_wide_grid_do_not_overlap(study_frames):
    """The grid of examples/lion.yaml, 0.0001 to 3, in three panels side by side."""
    tuning = study_frames["optimization"]["tuning"]
    tanh = tuning[tuning["activation"] == "sigmoid"].assign(activation="tanh")
    tuning = pd.concat([tuning, tanh])
    spread = {0.01: [0.0001, 0.0003, 0.001, 0.003], 0.1: [0.03, 0.3, 1.0, 3.0]}
    wide = pd.concat(
        [tuning]
        + [
            tuning[tuning["lr"] == lr].assign(lr=other, selected=False)
            for lr, others in spread.items()
            for other in others
        ]
    )
    fig = plots.make_figure("lr_sensitivity", {"tuning": wide}, STUDY_FACTORS["optimization"])
    tangled = tangled_panels(fig)
    plt.close(fig)
    assert tangled == []


def test_lr_sensitivity_marks_each_selected_rate(study_frames):
    tuning = study_frames["optimization"]["tuning"]
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, STUDY_FACTORS["optimization"])
    stars = [
        (x, y)
        for ax in figure_panels(fig)
        for line in ax.get_lines()
        if line.get_marker() == "*"
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
    ]
    titles = [ax.get_title() for ax in figure_panels(fig)]
    plt.close(fig)
    assert titles == ["activation relu", "activation sigmoid"]
    chosen = tuning[tuning["selected"]]
    assert len(chosen) == tuning["combination"].nunique() == len(stars)
    assert sorted(x for x, _ in stars) == sorted(chosen["lr"])
    assert all(y < 0 for _, y in stars)  # in the rows below the curves, off the data


def test_lr_sensitivity_repeats_the_unpenalized_cell_in_every_strength_panel(study_frames):
    tuning = study_frames["regularization"]["tuning"]
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, STUDY_FACTORS["regularization"])
    titles = [ax.get_title() for ax in figure_panels(fig)]
    dashed = [
        sum(line.get_linestyle() == "--" for line in ax.get_lines()) for ax in figure_panels(fig)
    ]
    plt.close(fig)
    assert titles == ["penalty strength 0.0001", "penalty strength 0.01"]
    assert dashed == [1, 1]


def test_lr_sensitivity_marks_diverged_rates(study_frames):
    tuning = study_frames["optimization"]["tuning"].copy()
    tuning.loc[tuning.index[0], "n_diverged"] = 1
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, STUDY_FACTORS["optimization"])
    crosses = sum(line.get_marker() == "x" for ax in fig.axes for line in ax.get_lines())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert crosses == 1 and any("diverged" in t for t in legend)
