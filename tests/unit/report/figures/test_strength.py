"""The figures against the penalty strength."""

from __future__ import annotations

import matplotlib.pyplot as plt
from conftest import STUDY_FACTORS, figure_panels

from optreg.report import plots


def test_sparsity_shows_exact_and_near_zeros(study_frames):
    summary = study_frames["regularization"]["summary"]
    fig = plots.make_figure(
        "sparsity_vs_strength", {"summary": summary}, STUDY_FACTORS["regularization"]
    )
    panels = figure_panels(fig)
    titles = [ax.get_title() for ax in panels]
    exact = {tuple(line.get_ydata()) for line in panels[0].get_lines() if len(line.get_ydata()) > 1}
    plt.close(fig)
    assert titles == ["weights exactly zero", "weights magnitude below 0.001"]
    tuned = summary[summary["protocol"] == "tuned"].sort_values("strength")
    prox = tuple(tuned.loc[tuned["penalty"] == "l1_prox", "zero_fraction_mean"])
    assert prox in exact
    assert all(low >= -0.05 and high <= 1.05 for low, high in (ax.get_ylim() for ax in panels))
