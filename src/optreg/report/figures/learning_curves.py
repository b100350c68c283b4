"""Validation accuracy per epoch of the evaluation runs at the tuned rate."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "learning_curves",
    requires=("optimizer", "activation"),
    inputs=("history",),
    title="Learning curves at the tuned learning rate",
    caption=(
        "Validation accuracy per epoch of the evaluation runs at each cell's tuned learning "
        "rate: the mean over the evaluation seeds as a line and their range (minimum to "
        "maximum) as a band; the epoch axis is logarithmic, to show the first epochs."
    ),
)
def learning_curves(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A line per optimizer, a panel per activation (and per value of any other factor)."""
    from matplotlib import ticker
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from optreg.report.figures.style import (
        facet_frames,
        label_outer,
        legend_below,
        levels,
        need_columns,
        new_figure,
        palette,
        panel_columns,
        value_label,
    )

    history = tables["history"]
    need_columns(history, [*factors, "phase", "protocol", "epoch", "val_accuracy"], "history")
    curves = history[(history["phase"] == "eval") & (history["protocol"] == "tuned")]
    if curves.empty:
        raise ValueError("the history table has no evaluation runs of the tuned protocol")
    extra = [k for k in factors if k not in ("optimizer", "activation")]
    optimizers = levels(curves["optimizer"], "optimizer", orders)
    activations = levels(curves["activation"], "activation", orders)
    colors = palette(optimizers, "optimizer")
    panels = []
    for row_label, row_frame in facet_frames(curves, extra, orders):
        for act in activations:
            cells = row_frame[row_frame["activation"] == act]
            if not cells.empty:
                title = "\n".join(
                    x for x in (f"activation {value_label('activation', act)}", row_label) if x
                )
                panels.append((title, cells))
    ncols = panel_columns(len(activations))
    fig, axes, grid = new_figure(len(panels), ncols, 2.7 if ncols > 1 else 3.4)
    low, last = 1.0, 1
    for ax, (title, cells) in zip(axes, panels, strict=True):
        for opt in optimizers:
            runs = cells[cells["optimizer"] == opt]
            if runs.empty:
                continue
            per_epoch = runs.groupby("epoch")["val_accuracy"].agg(["mean", "min", "max"])
            color = colors[opt]
            ax.plot(per_epoch.index, per_epoch["mean"], color=color, lw=1.4)
            ax.fill_between(
                per_epoch.index, per_epoch["min"], per_epoch["max"], color=color, alpha=0.18, lw=0
            )
            low = min(low, float(per_epoch["min"].min()))
        ax.set_title(title, fontsize=9)
        last = max(last, int(cells["epoch"].max()))
    for ax in axes:
        # Most of the change is in the first epochs: a log axis gives them room.
        ax.set_xscale("log")
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500) if t < last / 1.6] + [last]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlim(0.9, last * 1.1)
    axes[0].set_ylim(max(0.0, math.floor(low * 10) / 10), 1.0)
    label_outer(grid, len(panels), "epoch (log scale)", "validation accuracy\n(mean over seeds)")
    handles = [
        Line2D([], [], color=colors[o], lw=1.4, label=value_label("optimizer", o))
        for o in optimizers
    ]
    handles.append(Patch(color="0.6", alpha=0.4, label="min–max over seeds"))
    legend_below(fig, handles)
    fig.suptitle(spec.title)
    return fig
