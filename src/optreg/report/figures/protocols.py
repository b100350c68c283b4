"""Each cell's test accuracy at its tuned rate beside that at its optimizer's default rate."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from optreg.naming import format_value
from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "protocols",
    inputs=("summary",),
    min_factors=1,
    needs=("choice",),
    title="Tuned against default learning rate",
    caption=(
        "Mean test accuracy of each cell over the evaluation seeds with its 95% "
        "t-interval over the evaluation seeds, at the learning rate tuned "
        "on validation accuracy (filled) and at the optimizer's customary default rate, the "
        "original single-setting protocol (open); cells are sorted by their tuned accuracy, "
        "and the column on the right gives the two rates (an asterisk marks a tuned rate on "
        "the edge of the grid)."
    ),
)
def protocols(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A row per cell, best tuned accuracy on top, its two protocols side by side."""
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    from optreg.report.figures.style import (
        EDGE_MARK,
        PROTOCOL_LABELS,
        PROTOCOLS,
        error_bars,
        factor_label,
        legend_below,
        need_columns,
        new_figure,
        ordered_cells,
    )

    summary = tables["summary"]
    need_columns(
        summary, ["combination", *factors, "protocol", "lr", "test_accuracy_mean"], "summary"
    )
    by = {p: summary[summary["protocol"] == p].set_index("combination") for p in PROTOCOLS}
    cells = ordered_cells(summary, factors, orders)
    tuned_mean = by["tuned"]["test_accuracy_mean"]

    # Best tuned accuracy on top; cells without one (all seeds diverged) at the bottom.
    def rank(cell):
        mean = tuned_mean.get(cell[0], math.nan)
        return (pd.isna(mean), -mean if pd.notna(mean) else 0.0)

    cells.sort(key=rank)
    n = len(cells)
    fig, axes, _ = new_figure(1, 1, max(2.6, 1.0 + 0.21 * n), sharex=False, sharey=False)
    ax = axes[0]
    style = {
        "tuned": {"mfc": "C0", "mec": "C0", "color": "C0", "dy": -0.14},
        "oneshot": {"mfc": "white", "mec": "C3", "color": "C3", "dy": 0.14},
    }
    notes, any_edge = [], False
    for y, (combination, _) in enumerate(cells):
        points = {}
        for p in PROTOCOLS:
            if combination not in by[p].index:
                continue
            row = by[p].loc[[combination]]
            mean = float(row["test_accuracy_mean"].iloc[0])
            if pd.isna(mean):
                notes.append((y + style[p]["dy"], f"{PROTOCOL_LABELS[p]}: all seeds diverged"))
                continue
            points[p] = mean
            s = style[p]
            ax.errorbar(
                [mean],
                [y + s["dy"]],
                xerr=error_bars(row, "test_accuracy") if "test_accuracy_ci_low" in row else None,
                fmt="o",
                markersize=4.5,
                mfc=s["mfc"],
                mec=s["mec"],
                mew=1.2,
                ecolor=s["color"],
                elinewidth=1.0,
                capsize=2,
                zorder=3,
            )
        if len(points) == 2:
            ax.plot(
                [points["tuned"], points["oneshot"]],
                [y + style["tuned"]["dy"], y + style["oneshot"]["dy"]],
                color="0.75",
                lw=0.8,
                zorder=1,
            )
        # The rates used, tuned / default, in a column right of the panel.
        rates = []
        for p in PROTOCOLS:
            if combination not in by[p].index:
                rates.append("–")
                continue
            row = by[p].loc[combination]
            edge = p == "tuned" and bool(row.get("lr_on_grid_edge", False))
            any_edge |= edge
            rates.append(format_value(float(row["lr"])) + (EDGE_MARK if edge else ""))
        ax.text(
            1.02,
            y,
            " / ".join(rates),
            transform=blended_transform_factory(ax.transAxes, ax.transData),
            ha="left",
            va="center",
            fontsize=7,
            color="0.3",
        )
    for y, note in notes:
        ax.text(
            0.01,
            y,
            note,
            transform=blended_transform_factory(ax.transAxes, ax.transData),
            fontsize=6.5,
            color="0.3",
            va="center",
        )
    ax.text(
        1.02,
        -0.7,
        "lr tuned /\ndefault",
        transform=blended_transform_factory(ax.transAxes, ax.transData),
        ha="left",
        va="bottom",
        fontsize=7,
        color="0.3",
    )
    ax.set_yticks(range(n), [label for _, label in cells], fontsize=8 if n <= 20 else 6.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("test accuracy (mean and 95% t-interval over the evaluation seeds)")
    ax.set_ylabel(" + ".join(factor_label(k) for k in factors) if len(factors) < 4 else "cell")
    handles = [
        Line2D([], [], ls="none", marker="o", mfc="C0", mec="C0", label=PROTOCOL_LABELS["tuned"]),
        Line2D(
            [],
            [],
            ls="none",
            marker="o",
            mfc="white",
            mec="C3",
            mew=1.2,
            label="customary default learning rate (one-shot, as originally)",
        ),
    ]
    if any_edge:
        handles.append(Line2D([], [], ls="none", label=f"lr{EDGE_MARK}: tuned rate on grid edge"))
    legend_below(fig, handles)
    fig.suptitle(spec.title)
    return fig
