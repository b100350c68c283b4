"""Learning curves of the tuned evaluation runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from conftest import STUDY_FACTORS, figure_panels

from optreg.report import plots


def test_learning_curves_draw_the_tuned_evaluation_runs(study_frames):
    history = study_frames["optimization"]["history"]
    fig = plots.make_figure("learning_curves", {"history": history}, STUDY_FACTORS["optimization"])
    panels = figure_panels(fig)
    titles = [ax.get_title() for ax in panels]
    first = panels[0].get_lines()[0]
    plt.close(fig)
    assert titles == ["activation relu", "activation sigmoid"]
    runs = history[
        (history["phase"] == "eval")
        & (history["protocol"] == "tuned")
        & (history["optimizer"] == "momentum")
        & (history["activation"] == "relu")
    ]
    expected = runs.groupby("epoch")["val_accuracy"].mean()
    np.testing.assert_allclose(first.get_ydata(), expected.to_numpy())
