"""How many epochs each cell took to reach the study's target validation accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "time_to_target",
    inputs=("summary",),
    min_factors=1,
    title="Epochs to reach the target validation accuracy",
    caption=(
        "First epoch at which the validation accuracy reaches the study's target, mean over "
        "the evaluation seeds that reached it, at each cell's tuned learning rate, with the "
        "95% t-interval over the evaluation seeds as error bars; the text "
        "gives how many seeds reached the target, and hatched bars mark cells where none did. "
        "A mean over fewer seeds is over the faster ones."
    ),
)
def time_to_target(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A bar per cell, fastest on top, those that never reached the target at the bottom."""
    import numpy as np
    import pandas as pd
    from matplotlib import ticker

    from optreg.report.figures.style import (
        CI_NOTE,
        error_bars,
        factor_label,
        need_columns,
        new_figure,
        ordered_cells,
        protocol_rows,
    )

    rows = protocol_rows(tables["summary"], "tuned")
    need_columns(
        rows,
        ["combination", *factors, "seeds", "reached_target", "epochs_to_target_mean"],
        "summary",
    )
    rows = rows.set_index("combination", drop=False)
    cells = ordered_cells(rows, factors, orders)
    means = rows["epochs_to_target_mean"]
    # Fastest on top; cells where no seed reached the target at the bottom.
    cells.sort(key=lambda c: (pd.isna(means[c[0]]), means[c[0]] if pd.notna(means[c[0]]) else 0))
    n = len(cells)
    fig, axes, _ = new_figure(1, 1, max(2.4, 1.0 + 0.21 * n), sharex=False, sharey=False)
    ax = axes[0]
    reached = rows[rows["epochs_to_target_mean"].notna()]
    top = 1.0
    if not reached.empty:
        high = reached.get("epochs_to_target_ci_high", reached["epochs_to_target_mean"])
        top = float(np.nanmax([high.max(), reached["epochs_to_target_mean"].max()]))
    xmax = top * 1.3 + 0.5  # room for the text after the longest bar
    for y, (combination, _) in enumerate(cells):
        row = rows.loc[[combination]]
        k, total = int(row["reached_target"].iloc[0]), int(row["seeds"].iloc[0])
        mean = row["epochs_to_target_mean"].iloc[0]
        if pd.isna(mean):
            ax.barh(y, top, height=0.62, color="0.92", edgecolor="0.55", hatch="////", lw=0.6)
            ax.text(
                0.2,
                y,
                f"not reached (0/{total} seeds)",
                va="center",
                fontsize=7,
                color="0.2",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
            )
            continue
        err = error_bars(row, "epochs_to_target") if "epochs_to_target_ci_low" in row else None
        ax.barh(y, mean, height=0.62, color="C0", alpha=0.85, lw=0)
        if err is not None:
            ax.errorbar([mean], [y], xerr=err, fmt="none", ecolor="0.2", elinewidth=1.0, capsize=2)
        end = mean + (err[1][0] if err is not None else 0)
        ax.text(end + top * 0.02, y, f"{k}/{total} seeds", va="center", fontsize=7, color="0.25")
    ax.set_yticks(range(n), [label for _, label in cells], fontsize=8 if n <= 20 else 6.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, xmax)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel(
        "epochs to reach the target validation accuracy\n"
        f"(mean over the seeds that reached it, {CI_NOTE})"
    )
    ax.set_ylabel(" + ".join(factor_label(k) for k in factors) if len(factors) < 4 else "cell")
    fig.suptitle(spec.title + " (tuned learning rate)")
    return fig
