"""Test accuracy as a heatmap over optimizers and activations, at both protocols' rates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.naming import format_value
from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_COLOR_SPAN = 0.02  # accuracy range of the heatmap colormap, at least


@figure(
    "test_accuracy_heatmap",
    requires=("optimizer", "activation"),
    inputs=("summary",),
    title="Test accuracy by optimizer and activation",
    caption=(
        "Mean test accuracy over the evaluation seeds for each optimizer and activation, left "
        "at the learning rate tuned on validation accuracy, right at the optimizer's "
        "customary default rate; the value after ± is the half-width of the 95% "
        "t-interval over the evaluation seeds, lr is the rate used, and an "
        "asterisk after it marks a tuned rate on the edge of the grid. Both panels share one "
        "colour scale."
    ),
)
def test_accuracy_heatmap(tables, factors, orders, spec: FigureSpec) -> Figure:
    """Activations by optimizers, a heatmap per protocol (and per value of any other factor)."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    from optreg.report.figures.style import (
        CI_NOTE,
        EDGE_MARK,
        PROTOCOL_LABELS,
        PROTOCOLS,
        facet_frames,
        half_ci,
        levels,
        need_columns,
        new_figure,
        value_label,
    )

    summary = tables["summary"]
    need_columns(
        summary, ["optimizer", "activation", "protocol", "lr", "test_accuracy_mean"], "summary"
    )
    extra = [k for k in factors if k not in ("optimizer", "activation")]
    facets = facet_frames(summary, extra, orders)
    values = summary.loc[summary["protocol"].isin(PROTOCOLS), "test_accuracy_mean"].dropna()
    vmin, vmax = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    # A floor on the color range, so that differences well inside the seeds' CIs do not
    # span the whole colormap.
    vmin = min(vmin, vmax - MIN_COLOR_SPAN)
    rows_all = levels(summary["activation"], "activation", orders)
    cols_all = levels(summary["optimizer"], "optimizer", orders)
    row_height = max(2.3, 1.05 + 0.62 * len(rows_all)) + (0.2 if extra else 0)
    fig, axes, _ = new_figure(2 * len(facets), 2, row_height)
    any_edge = False
    panels = [(p, label, frame) for label, frame in facets for p in PROTOCOLS]
    for ax, (protocol, label, frame) in zip(axes, panels, strict=True):
        rows = frame[frame["protocol"] == protocol]
        if rows.duplicated(["activation", "optimizer"]).any():
            raise ValueError("the summary table has several rows per cell and protocol")
        cell = rows.set_index(["activation", "optimizer"])
        grid = np.full((len(rows_all), len(cols_all)), np.nan)
        text = np.full(grid.shape, "", dtype=object)
        for i, act in enumerate(rows_all):
            for j, opt in enumerate(cols_all):
                if (act, opt) not in cell.index:
                    continue
                row = cell.loc[(act, opt)]
                if pd.isna(row["test_accuracy_mean"]):
                    ax.text(
                        j + 0.5,
                        i + 0.5,
                        "all seeds\ndiverged",
                        ha="center",
                        va="center",
                        color="0.25",
                        fontsize=7,
                        fontstyle="italic",
                    )
                    continue
                grid[i, j] = row["test_accuracy_mean"]
                lines = [f"{row['test_accuracy_mean']:.3f}"]
                half = half_ci(row.get("test_accuracy_ci_low"), row.get("test_accuracy_ci_high"))
                if pd.notna(half):
                    lines.append(f"±{half:.3f}")
                edge = protocol == "tuned" and bool(row.get("lr_on_grid_edge", False))
                any_edge |= edge
                lines.append(f"lr {format_value(float(row['lr']))}" + (EDGE_MARK if edge else ""))
                if row.get("n_diverged", 0) > 0:
                    lines.append(f"{int(row['n_diverged'])} diverged")
                text[i, j] = "\n".join(lines)
        ax.set_facecolor("0.88")
        sns.heatmap(
            grid,
            mask=np.isnan(grid),
            annot=text,
            fmt="",
            cmap="viridis",
            vmin=vmin,
            vmax=vmax,
            cbar=False,
            linewidths=1.0,
            linecolor="white",
            annot_kws={"fontsize": 7.5, "linespacing": 1.1},
            xticklabels=[value_label("optimizer", v) for v in cols_all],
            yticklabels=[value_label("activation", v) for v in rows_all],
            ax=ax,
        )
        ax.tick_params(axis="y", rotation=0)
        ax.tick_params(axis="both", length=0)
        ax.grid(False)
        ax.set_xlabel("optimizer")
        ax.set_ylabel("activation" if ax.get_subplotspec().is_first_col() else "")
        ax.set_title("\n".join(x for x in (PROTOCOL_LABELS[protocol], label) if x), fontsize=9)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap="viridis")
    fig.colorbar(mappable, ax=axes, label="test accuracy\n(mean over seeds)", shrink=0.9, pad=0.02)
    notes = ["± half-width of the " + CI_NOTE, "lr: learning rate used"]
    if any_edge:
        notes.append(f"{EDGE_MARK} tuned rate on the edge of the grid")
    fig.supxlabel("; ".join(notes), fontsize=7, color="0.3")
    fig.suptitle(spec.title)
    _fit_annotations(fig, axes, len(cols_all))
    return fig


def _fit_annotations(fig: Figure, axes, columns: int, room: float = 0.85) -> None:
    """Shrink the heatmap's cell texts, all alike, so that the widest takes at most `room`
    of its cell (the rest is the white grid and a margin): more optimizers than the
    built-in four make the cells narrower. A text's width is proportional to its size."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    scale = 1.0
    for ax in axes:
        cell = ax.get_window_extent(renderer).width / columns
        for text in ax.texts:
            scale = min(scale, room * cell / text.get_window_extent(renderer).width)
    for ax in axes if scale < 1.0 else ():
        for text in ax.texts:
            text.set_fontsize(text.get_fontsize() * scale)
