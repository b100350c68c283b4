"""The figures of the report: one registry, each figure one drawing function in a module of
this package, with its spec and caption in the `figure` decorator above it.

    FIGURES       name -> FigureSpec (factors needed, tables read, title, caption, draw)
    figures_for   the figures a study with given factors draws, in catalogue order

The drawing helpers every figure shares are in `style`; `optreg.report.plots` draws a figure
of the catalogue and saves it. Importing this package imports no plotting library: the
figures' modules import theirs inside their drawing functions, so that the workflow can
plan figures when it parses.
"""

from __future__ import annotations

from optreg.report.figures.catalogue import FIGURES, TABLES, FigureSpec, figure, figures_for

# The built-in figures. Each enters FIGURES when its module is imported, so this order is the
# catalogue's: that of figures_for, of a study's targets and of the report's pages.
# isort: off
from optreg.report.figures import heatmap, protocols, lr_sensitivity, learning_curves  # noqa: F401
from optreg.report.figures import strength, time_to_target, performance_profile  # noqa: F401
from optreg.report.figures import activation_gap  # noqa: F401

# isort: on

__all__ = ["FIGURES", "TABLES", "FigureSpec", "figure", "figures_for"]
