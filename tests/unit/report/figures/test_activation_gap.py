"""ReLU's accuracy gap to the other activations against depth (the gaps themselves:
tests/unit/analysis/test_gaps.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from conftest import figure_panels, runs_at_two_depths

from optreg.report import plots


def test_activation_gap_is_drawn_against_depth(study_frames):
    runs, _ = runs_at_two_depths(study_frames["optimization"]["runs"])
    factors = ["optimizer", "activation", "depth"]
    fig = plots.make_figure("activation_gap_vs_depth", {"runs": runs}, factors)
    (panel,) = figure_panels(fig)
    assert panel.get_title() == "ReLU − sigmoid" and list(panel.get_xticks()) == [1, 2]
    plt.close(fig)
