"""ReLU's accuracy gap to each other activation against depth (`optreg.analysis.gaps`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "activation_gap_vs_depth",
    requires=("optimizer", "activation", "depth"),
    inputs=("runs",),
    title="What depth does to the activations",
    caption=(
        "Test accuracy of ReLU minus that of each other activation, per optimizer, against "
        "the number of hidden layers, each cell at its tuned learning rate: the mean of the "
        "paired differences over the evaluation seeds with its 95% t-interval. A filled point "
        "is one whose interval excludes zero, an open one one whose interval includes it. "
        "Exploratory: each interval is unadjusted for the many gaps shown, and none is the "
        "confirmatory test of a claim (those are Holm-corrected, in the findings). Above "
        "zero, ReLU is more accurate."
    ),
)
def activation_gap_vs_depth(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A line per optimizer, a panel per other activation (and value of further factors)."""
    import numpy as np
    from matplotlib.lines import Line2D

    from optreg.analysis.gaps import activation_gaps
    from optreg.report.figures.style import (
        facet_frames,
        label_outer,
        legend_below,
        levels,
        new_figure,
        palette,
    )

    gaps = activation_gaps(tables["runs"], factors)
    if gaps.empty:
        raise ValueError("no ReLU cell to compare with: the study has no activation 'relu'")
    extra = [k for k in factors if k not in ("optimizer", "activation", "depth")]
    panels = []
    for activation in levels(gaps["activation"], "activation", orders):
        for label, frame in facet_frames(gaps[gaps["activation"] == activation], extra, orders):
            title = f"ReLU − {activation}" + (f", {label}" if label else "")
            panels.append((title, frame))
    fig, axes, grid = new_figure(len(panels), min(len(panels), 2), 3.4)
    optimizers = levels(gaps["optimizer"], "optimizer", orders)
    colors = palette(optimizers, "optimizer")
    depths = sorted(gaps["depth"].unique())
    offsets = np.linspace(-0.12, 0.12, len(optimizers)) if len(optimizers) > 1 else [0.0]
    for ax, (title, frame) in zip(axes, panels, strict=True):
        ax.axhline(0, color="0.4", lw=0.8)
        for optimizer, dx in zip(optimizers, offsets, strict=True):
            line = frame[frame["optimizer"] == optimizer].sort_values("depth")
            if line.empty:
                continue
            x = line["depth"].to_numpy(dtype=float) + dx
            err = np.vstack([line["gap"] - line["ci_low"], line["ci_high"] - line["gap"]])
            color = colors[optimizer]
            ax.errorbar(x, line["gap"], yerr=err, color=color, lw=1.2, capsize=2)
            sig = line["significant"].to_numpy(dtype=bool)
            ax.scatter(x[sig], line["gap"][sig], color=color, zorder=3, s=22)
            ax.scatter(x[~sig], line["gap"][~sig], facecolor="white", edgecolor=color, zorder=3)
        ax.set_xticks(depths)
        ax.set_title(title, fontsize=9)
    label_outer(
        grid,
        len(panels),
        "hidden layers",
        "test accuracy gap, ReLU minus other\n(paired mean, unadjusted 95% CI)",
    )
    handles = [Line2D([], [], color=colors[o], marker="o", label=o) for o in optimizers]
    handles += [
        Line2D([], [], color="0.3", marker="o", ls="", label="CI excludes 0"),
        Line2D([], [], color="0.3", marker="o", ls="", mfc="white", label="CI includes 0"),
    ]
    legend_below(fig, handles)
    fig.suptitle(spec.title + " (exploratory, unadjusted intervals)")
    return fig
