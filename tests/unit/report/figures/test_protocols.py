"""The figure of each cell at its tuned and at its default learning rate."""

from __future__ import annotations

import matplotlib.pyplot as plt
from conftest import STUDY_FACTORS, figure_panels

from optreg.report import plots
from optreg.report.figures import style


def test_protocols_has_both_protocols_of_every_cell_sorted_by_tuned(study_frames):
    summary = study_frames["regularization"]["summary"]
    fig = plots.make_figure("protocols", {"summary": summary}, STUDY_FACTORS["regularization"])
    (ax,) = figure_panels(fig)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    tuned = summary[summary["protocol"] == "tuned"]
    assert len(labels) == len(tuned) == 5  # none, l1 and l1_prox at two strengths
    assert "none" in labels and "l1_prox 0.01" in labels
    by_label = {
        style.cell_label(r, STUDY_FACTORS["regularization"]): r for _, r in tuned.iterrows()
    }
    means = [by_label[label]["test_accuracy_mean"] for label in labels]
    assert means == sorted(means, reverse=True)
