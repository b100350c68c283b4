"""Figures against the penalty strength: test accuracy, and the sparsity of the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.naming import format_value
from optreg.records import NEAR_ZERO
from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "accuracy_vs_strength",
    requires=("penalty", "strength"),
    inputs=("summary",),
    title="Test accuracy against penalty strength",
    caption=(
        "Mean test accuracy over the evaluation seeds against the penalty strength, each cell "
        "at its tuned learning rate, with the 95% t-interval over the "
        "evaluation seeds as error bars; the dashed line and grey band are the unpenalized "
        "model's mean and interval."
    ),
)
def accuracy_vs_strength(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A line per penalty, the unpenalized cell as reference; a panel per other factor value."""
    from optreg.report.figures.style import (
        facet_frames,
        label_outer,
        levels,
        log_ticks,
        need_columns,
        new_figure,
        palette,
        protocol_rows,
    )

    rows = protocol_rows(tables["summary"], "tuned")
    need_columns(rows, ["penalty", "strength", "n_diverged", "test_accuracy_mean"], "summary")
    extra = [k for k in factors if k not in ("penalty", "strength")]
    facets = facet_frames(rows, extra, orders)
    penalties = [p for p in levels(rows["penalty"], "penalty", orders) if p != "none"]
    colors = palette(penalties, "penalty")
    ncols = min(len(facets), 2)
    fig, axes, grid = new_figure(len(facets), ncols, 3.2 if ncols > 1 else 3.6)
    strengths = [s for s in rows.loc[rows["penalty"] != "none", "strength"].unique() if s > 0]
    any_diverged = False
    for ax, (title, frame) in zip(axes, facets, strict=True):
        any_diverged |= _strength_panel(ax, frame, penalties, colors, "test_accuracy", True)
        log_ticks(ax, strengths)
        if title:
            ax.set_title(title, fontsize=9)
    label_outer(
        grid,
        len(facets),
        "penalty strength λ (log scale)",
        "test accuracy\n(mean over seeds, 95% CI)",
    )
    seen_none = bool((rows["penalty"] == "none").any())
    _strength_legend(fig, penalties, colors, seen_none, any_diverged, band=True)
    fig.suptitle(spec.title)
    return fig


@figure(
    "sparsity_vs_strength",
    requires=("penalty", "strength"),
    inputs=("summary",),
    title="Sparsity of the trained weights against penalty strength",
    caption=(
        "Share of weights that are exactly zero (left) and of magnitude below 1e-3 (right) "
        "after training, mean over the evaluation seeds at each cell's tuned learning rate, "
        "against the penalty strength; the dashed line is the unpenalized model. Only a "
        "proximal step sets weights exactly to zero; a subgradient penalty leaves them "
        "hovering near it."
    ),
)
def sparsity_vs_strength(tables, factors, orders, spec: FigureSpec) -> Figure:
    """Exact and near zeros side by side (per value of any other factor), as accuracy is."""
    import numpy as np

    from optreg.report.figures.style import (
        facet_frames,
        label_outer,
        levels,
        log_ticks,
        need_columns,
        new_figure,
        palette,
        protocol_rows,
    )

    rows = protocol_rows(tables["summary"], "tuned")
    metrics = (
        ("zero_fraction", "exactly zero"),
        ("near_zero_fraction", f"magnitude below {format_value(NEAR_ZERO)}"),
    )
    need_columns(
        rows, ["penalty", "strength", "n_diverged", *(f"{m}_mean" for m, _ in metrics)], "summary"
    )
    extra = [k for k in factors if k not in ("penalty", "strength")]
    facets = facet_frames(rows, extra, orders)
    penalties = [p for p in levels(rows["penalty"], "penalty", orders) if p != "none"]
    colors = palette(penalties, "penalty")
    fig, axes, grid = new_figure(2 * len(facets), 2, 3.0)
    strengths = [s for s in rows.loc[rows["penalty"] != "none", "strength"].unique() if s > 0]
    any_diverged = False
    panels = [(m, what, label, frame) for label, frame in facets for m, what in metrics]
    for ax, (metric, what, label, frame) in zip(axes, panels, strict=True):
        any_diverged |= _strength_panel(ax, frame, penalties, colors, metric, False)
        log_ticks(ax, strengths)
        # A little room beyond [0, 1] keeps a line at 0 or 1 off the frame.
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title("\n".join(x for x in (f"weights {what}", label) if x), fontsize=9)
    label_outer(
        grid, len(panels), "penalty strength λ (log scale)", "share of weights\n(mean over seeds)"
    )
    seen_none = bool((rows["penalty"] == "none").any())
    _strength_legend(fig, penalties, colors, seen_none, any_diverged, band=False)
    fig.suptitle(spec.title)
    return fig


def _strength_panel(ax, frame, penalties, colors, metric: str, dodge_lines: bool) -> bool:
    """One metric against strength: a line per penalty, the unpenalized cell as reference.

    Returns whether any seed of a drawn cell diverged.
    """
    import pandas as pd

    from optreg.report.figures.style import error_bars, mark_bottom

    any_diverged = False
    none = frame[frame["penalty"] == "none"]
    if not none.empty and pd.notna(none[f"{metric}_mean"].iloc[0]):
        ref = none.iloc[0]
        ax.axhline(ref[f"{metric}_mean"], color="0.35", lw=1.2, ls="--", zorder=1)
        low, high = ref.get(f"{metric}_ci_low"), ref.get(f"{metric}_ci_high")
        if pd.notna(low) and pd.notna(high) and high > low:
            ax.axhspan(low, high, color="0.5", alpha=0.15, lw=0, zorder=0)
        any_diverged |= bool(ref.get("n_diverged", 0) > 0)
    for i, p in enumerate(penalties):
        line = frame[frame["penalty"] == p].sort_values("strength")
        if line.empty:
            continue
        # Dodge lines sideways a little (in log space) so error bars do not overlap.
        dodge = 10 ** (0.04 * (i - (len(penalties) - 1) / 2)) if dodge_lines else 1.0
        x = line["strength"].to_numpy(float) * dodge
        ax.errorbar(
            x,
            line[f"{metric}_mean"],
            yerr=error_bars(line, metric) if f"{metric}_ci_low" in line else None,
            color=colors[p],
            marker="o",
            markersize=3.5,
            lw=1.4,
            capsize=2.5,
            elinewidth=1.0,
            zorder=3,
        )
        bad = line[line["n_diverged"] > 0]
        if not bad.empty:
            any_diverged = True
            mark_bottom(ax, bad["strength"] * dodge, colors[p], i)
    return any_diverged


def _strength_legend(fig, penalties, colors, seen_none, any_diverged, band: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from optreg.report.figures.style import diverged_marker, legend_below, value_label

    handles = [
        Line2D(
            [],
            [],
            color=colors[p],
            marker="o",
            markersize=3.5,
            lw=1.4,
            label=value_label("penalty", p),
        )
        for p in penalties
    ]
    if seen_none:
        handles.append(Line2D([], [], color="0.35", lw=1.2, ls="--", label="no penalty"))
        if band:
            handles.append(Patch(color="0.5", alpha=0.25, label="no penalty, 95% CI"))
    if any_diverged:
        handles.append(diverged_marker())
    legend_below(fig, handles)
