"""The test-accuracy heatmap, drawn from real tables of a tiny tuned study."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from conftest import STUDY_FACTORS, figure_panels, tangled_panels

from optreg.report import plots
from optreg.report.figures import style


def test_heatmap_annotations_hold_the_summary(study_frames):
    summary = study_frames["optimization"]["summary"]
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": summary}, STUDY_FACTORS["optimization"]
    )
    titles = [ax.get_title() for ax in figure_panels(fig)]
    per_panel = [[t.get_text() for t in ax.texts] for ax in figure_panels(fig)]
    plt.close(fig)
    assert titles == [style.PROTOCOL_LABELS["tuned"], style.PROTOCOL_LABELS["oneshot"]]
    for protocol, texts in zip(style.PROTOCOLS, per_panel, strict=True):
        rows = summary[summary["protocol"] == protocol]
        assert len(texts) == len(rows) == 4
        for _, row in rows.iterrows():
            half = (row["test_accuracy_ci_high"] - row["test_accuracy_ci_low"]) / 2
            edge = "*" if protocol == "tuned" and row["lr_on_grid_edge"] else ""
            expected = f"{row['test_accuracy_mean']:.3f}\n±{half:.3f}\nlr {row['lr']:g}{edge}"
            assert expected in texts, (expected, texts)


def test_heatmap_marks_a_cell_where_every_seed_diverged(study_frames):
    summary = study_frames["optimization"]["summary"].copy()
    lost = (summary["protocol"] == "oneshot") & (summary["optimizer"] == "momentum")
    lost &= summary["activation"] == "sigmoid"
    metrics = [c for c in summary if c.startswith("test_accuracy_")]
    summary.loc[lost, metrics] = math.nan
    summary.loc[lost, "n_diverged"] = summary.loc[lost, "seeds"]
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": summary}, STUDY_FACTORS["optimization"]
    )
    per_panel = [[t.get_text() for t in ax.texts] for ax in figure_panels(fig)]
    plt.close(fig)
    assert [sum("diverged" in t for t in texts) for texts in per_panel] == [0, 1]
    assert len(per_panel[1]) == 4  # the other three cells keep their values


def test_heatmap_shares_one_colour_scale(study_frames):
    summary = study_frames["optimization"]["summary"]
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": summary}, STUDY_FACTORS["optimization"]
    )
    limits = {ax.collections[0].get_clim() for ax in figure_panels(fig) if ax.collections}
    plt.close(fig)
    (low, high) = limits.pop()
    assert not limits
    assert low == pytest.approx(summary["test_accuracy_mean"].min())
    assert high == pytest.approx(summary["test_accuracy_mean"].max())


def test_an_extra_factor_becomes_extra_panels(study_frames):
    summary = study_frames["optimization"]["summary"]
    two = pd.concat([summary.assign(epochs=3), summary.assign(epochs=4)])
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": two}, [*STUDY_FACTORS["optimization"], "epochs"]
    )
    titles = [ax.get_title() for ax in figure_panels(fig)]
    plt.close(fig)
    assert len(titles) == 4 and sum("epochs 4" in t for t in titles) == 2


def test_heatmap_labels_of_many_optimizers_do_not_overlap(study_frames):
    """A study with optimizers of one's own beside the built-in four (docs/extending.md)."""
    summary = study_frames["optimization"]["summary"]
    names = ["sgd", "momentum", "rmsprop", "adam", "adabelief"]
    rows = summary[summary["optimizer"] == "momentum"]
    many = pd.concat([rows.assign(optimizer=n, combination=rows["combination"] + n) for n in names])
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": many}, STUDY_FACTORS["optimization"]
    )
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in figure_panels(fig)]
    tangled = tangled_panels(fig)
    plt.close(fig)
    assert labels == [names, names] and tangled == []
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": summary}, STUDY_FACTORS["optimization"]
    )
    slanted = {t.get_rotation() for ax in figure_panels(fig) for t in ax.get_xticklabels()}
    plt.close(fig)
    assert slanted == {0.0}  # labels with room stay level


def test_heatmap_texts_of_many_optimizers_fit_their_cells(study_frames):
    """Six optimizers, one at a default rate of 0.0001: the longest text, at the PNG's
    resolution, leaves room in its cell; with room to spare the texts keep their size."""
    summary = study_frames["optimization"]["summary"]
    names = ["sgd", "momentum", "rmsprop", "adam", "adabelief", "signum"]
    rows = summary[summary["optimizer"] == "momentum"]
    many = pd.concat([rows.assign(optimizer=n, combination=rows["combination"] + n) for n in names])
    many.loc[(many["optimizer"] == "signum") & (many["protocol"] == "oneshot"), "lr"] = 0.0001
    for table, columns in ((many, len(names)), (summary, 2)):
        fig = plots.make_figure(
            "test_accuracy_heatmap", {"summary": table}, ["optimizer", "activation"]
        )
        fig.set_dpi(style.PNG_DPI)
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        widest = max(
            t.get_window_extent(renderer).width / (ax.get_window_extent(renderer).width / columns)
            for ax in figure_panels(fig)
            for t in ax.texts
        )
        sizes = {t.get_fontsize() for ax in figure_panels(fig) for t in ax.texts}
        plt.close(fig)
        assert widest < 0.9 and len(sizes) == 1
        if columns == 2:
            assert sizes == {7.5}
