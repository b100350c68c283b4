"""The performance profile of the optimizers across problems."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from conftest import STUDY_FACTORS, figure_panels

from optreg.analysis.aggregates import aggregate_table, majority_rates
from optreg.report import plots


def test_performance_profile_curves_end_at_one(study_frames):
    summary = study_frames["problems"]["summary"]
    runs = study_frames["problems"]["runs"]
    tables = {"summary": summary, "runs": runs}
    fig = plots.make_figure("performance_profile", tables, STUDY_FACTORS["problems"])
    (ax,) = figure_panels(fig)
    curves = [line.get_ydata() for line in ax.get_lines()]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert len(curves) == 2
    assert all(c[-1] == 1.0 and c[0] >= 0 and np.all(np.diff(c) >= 0) for c in curves)
    # Every problem has a best optimizer, within 0 of itself: at τ = 0 the shares add to >= 1.
    assert sum(c[0] for c in curves) >= 1.0
    # The legend gives each optimizer's IQM with its interval, highest first; no mean rank.
    iqms = aggregate_table(runs, majority_rates(summary), protocols=("tuned",))
    iqms = iqms.sort_values("iqm", ascending=False)
    expected = [
        f"{r.optimizer} (IQM {r.iqm:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}])"
        for r in iqms.itertuples()
    ]
    assert legend == expected
    assert not any("rank" in text for text in legend)
