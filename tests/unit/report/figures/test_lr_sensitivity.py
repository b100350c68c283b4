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


def test_lr_sensitivity_tells_fifteen_optimizers_apart_and_marks_the_lr_free(study_frames):
    """15 optimizers that all chose the same rate: each curve has a color and marker of its
    own, no two stars cover each other, and the learning-rate-free one is named so."""
    tuning = study_frames["optimization"]["tuning"]
    base = tuning[tuning["optimizer"] == tuning["optimizer"].iloc[0]]
    base = base[base["activation"] == base["activation"].iloc[0]]
    chosen = base.loc[base["selected"].astype(bool), "lr"].iloc[0]
    names = [f"opt{i:02d}" for i in range(15)]
    frames = [base.assign(optimizer=n, combination=f"{n}+relu") for n in names]
    fifteen = pd.concat(frames).assign(selected=lambda f: f["lr"] == chosen)
    fig = plots.make_figure("lr_sensitivity", {"tuning": fifteen}, ["optimizer"], lr_free=["opt03"])
    fig.draw_without_rendering()
    (ax,) = figure_panels(fig)
    curves = [line for line in ax.get_lines() if line.get_marker() not in ("*", "x", "None")]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    renderer = fig.canvas.get_renderer()
    boxes = []
    for star in stars:
        x, y = ax.transData.transform((star.get_xdata()[0], star.get_ydata()[0]))
        half = star.get_markersize() / 72 * fig.dpi / 2
        boxes.append((y - half, y + half))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert renderer is not None
    plt.close(fig)
    assert len(curves) == 15 and len(stars) == 15
    styles = {(tuple(line.get_color()), line.get_marker()) for line in curves}
    assert len(styles) == 15 and len({tuple(line.get_color()) for line in curves}) == 15
    boxes.sort()
    assert all(a[1] <= b[0] + 1e-6 for a, b in zip(boxes, boxes[1:], strict=False))
    assert "opt03 (learning-rate-free)" in labels and "opt04" in labels
