"""Validation accuracy over the learning-rate grid: what tuning saw, and what it chose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ROW_STEP = 0.065  # height of a row of markers below the data, in accuracy


@figure(
    "lr_sensitivity",
    inputs=("tuning",),
    min_factors=1,
    needs=("grid",),
    title="Validation accuracy across the learning-rate grid",
    caption=(
        "Mean final validation accuracy over the tuning seeds against the learning rate, with "
        "its 95% t-interval as a band. Below the curves, one row per "
        "curve: a star marks the rate the cell selected and a cross each rate at which at "
        "least one tuning seed diverged (such a rate is never selected). A learning-rate-free "
        "optimizer (it sets its own step size; the rate only scales it) is named so."
    ),
)
def lr_sensitivity(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A curve per value of the first factor, a panel per value of the second (and the rest)."""
    import numpy as np
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from optreg.report.figures.style import (
        diverged_marker,
        facet_frames,
        factor_label,
        label_outer,
        legend_below,
        levels,
        log_ticks,
        mark_row,
        markers,
        need_columns,
        new_figure,
        palette,
        panel_columns,
        value_label,
    )

    tuning = tables["tuning"]
    if "protocol" in tuning:
        tuning = tuning[tuning["protocol"] == "tuned"]  # the retuning seeds' are elsewhere
    lrs = sorted(tuning["lr"].unique())
    need_columns(tuning, [*factors, "lr", "selected", "n_diverged", "val_accuracy_mean"], "tuning")
    hue, col, extra = factors[0], (factors[1] if len(factors) > 1 else None), factors[2:]
    reference = None
    if hue == "penalty" and col == "strength":
        # The unpenalized cell has no strength: it is the reference in every strength panel.
        reference = tuning[tuning["penalty"] == "none"]
        tuning = tuning[tuning["penalty"] != "none"]
        if tuning.empty:
            tuning, reference = reference, None
    hue_levels = levels(tuning[hue], hue, orders)
    colors = palette(hue_levels + ([] if reference is None else ["none"]), hue)
    shapes = markers(hue_levels + ([] if reference is None else ["none"]), hue)
    # Optimizers that set their own step size (Prodigy): `lr` only scales it.
    lr_free = set(tuning.loc[tuning["lr_free"].astype(bool), hue]) if "lr_free" in tuning else set()
    col_levels = levels(tuning[col], col, orders) if col else [None]
    panels = []
    for row_label, row_frame in facet_frames(tuning, extra, orders):
        for c in col_levels:
            frame = row_frame if c is None else row_frame[row_frame[col] == c]
            if frame.empty:
                continue
            if reference is not None:
                ref = reference
                for k in extra:
                    ref = ref[ref[k] == frame[k].iloc[0]]
                frame = pd.concat([ref, frame])
            title = "\n".join(
                x
                for x in (f"{factor_label(col)} {value_label(col, c)}" if col else "", row_label)
                if x
            )
            panels.append((title, frame))
    lines = (["none"] if reference is not None else []) + hue_levels
    ncols = panel_columns(len(col_levels))
    # Taller panels for many lines: each gets a row of its own below the data.
    height = (3.2 if ncols > 1 else 3.6) + 0.1 * max(0, len(lines) - 5)
    fig, axes, grid = new_figure(len(panels), ncols, height)
    any_diverged = False
    bottom = -ROW_STEP * (len(lines) + 1)
    for ax, (title, frame) in zip(axes, panels, strict=True):
        for index, h in enumerate(lines):
            line = frame[frame[hue] == h].sort_values("lr")
            if line.empty:
                continue
            color = colors[h]
            dashed = reference is not None and h == "none"
            ax.plot(
                line["lr"],
                line["val_accuracy_mean"],
                marker=shapes[h],
                markersize=3.5,
                lw=1.4,
                ls="--" if dashed else "-",
                color=color,
                zorder=3,
            )
            if "val_accuracy_ci_low" in line:
                ax.fill_between(
                    line["lr"],
                    line["val_accuracy_ci_low"],
                    line["val_accuracy_ci_high"],
                    color=color,
                    alpha=0.15,
                    lw=0,
                )
            # The selected rate and the diverged ones on a row of this line's own below the
            # data: cells that chose the same rate stay distinguishable.
            row = -ROW_STEP * (index + 1)
            chosen = line.loc[line["selected"].astype(bool), "lr"]
            mark_row(ax, chosen, row, color, "*")
            bad = line[line["n_diverged"] > 0]
            if not bad.empty:
                any_diverged = True
                mark_row(ax, bad["lr"], row, color, "x")
        log_ticks(ax, lrs)
        # Below zero, one row per line: its selected rate and the rates where it diverged.
        ax.set_ylim(bottom, 1.03)
        ax.set_yticks(np.linspace(0, 1, 5))
        ax.axhline(0, color="0.6", lw=0.8, zorder=1)
        if title:
            ax.set_title(title, fontsize=9)
    label_outer(
        grid,
        len(panels),
        "learning rate (log scale)",
        "validation accuracy\n(mean over tuning seeds)",
    )
    handles = [
        Line2D(
            [],
            [],
            color=colors[h],
            marker=shapes[h],
            markersize=3.5,
            lw=1.4,
            ls="--" if reference is not None and h == "none" else "-",
            label=value_label(hue, h) + (" (learning-rate-free)" if h in lr_free else ""),
        )
        for h in lines
    ]
    handles.append(
        Line2D(
            [],
            [],
            ls="none",
            marker="*",
            markersize=8,
            mfc="0.7",
            mec="black",
            mew=0.4,
            label="selected rate",
        )
    )
    handles.append(Patch(color="0.6", alpha=0.35, label="95% CI"))
    if any_diverged:
        handles.append(diverged_marker(""))
    legend_below(fig, handles)
    fig.suptitle(spec.title)
    _fit_stars(fig, axes, bottom)
    return fig


def _fit_stars(fig, axes, bottom: float) -> None:
    """Size the stars to their rows, once the figure is laid out: stars of lines that chose
    the same rate never cover each other (a study of 10-15 optimizers)."""
    fig.draw_without_rendering()
    for ax in axes:
        height = ax.get_window_extent().height * 72 / fig.dpi  # points
        size = max(2.5, min(8.0, 0.8 * ROW_STEP / (1.03 - bottom) * height))
        for line in ax.get_lines():
            if line.get_marker() == "*":
                line.set_markersize(size)
