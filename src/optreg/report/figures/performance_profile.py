"""Performance profiles of the optimizers across problems (`optreg.analysis.gaps`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optreg.report.figures.catalogue import FigureSpec, figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@figure(
    "performance_profile",
    requires=("problem", "optimizer"),
    inputs=("summary", "runs"),
    title="Performance profile of the optimizers across problems",
    caption=(
        "For each optimizer, the share of problems on which its mean test accuracy (at its "
        "tuned learning rate) is within a gap τ of the best optimizer on that problem, as τ "
        "grows; a curve that rises early belongs to an optimizer that is rarely far behind. "
        "The curves are of means and carry no uncertainty: the legend gives each optimizer's "
        "interquartile mean of its test accuracy normalized per problem (0 the majority-class "
        "rate of the test split, 1 perfect) over every problem and evaluation seed, with its "
        "95% stratified-bootstrap interval; overlapping intervals do not rank the optimizers."
    ),
)
def performance_profile(tables, factors, orders, spec: FigureSpec) -> Figure:
    """A step curve per optimizer; a panel per value of any factor besides those two."""
    import numpy as np
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    from optreg.analysis.aggregates import aggregate_table, majority_rates
    from optreg.analysis.gaps import profile_curves
    from optreg.report.figures.style import (
        facet_frames,
        label_outer,
        legend_below,
        levels,
        need_columns,
        new_figure,
        palette,
        protocol_rows,
    )

    rows = protocol_rows(tables["summary"], "tuned")
    need_columns(
        rows, ["problem", "optimizer", "test_accuracy_mean", "test_majority_rate"], "summary"
    )
    runs = tables["runs"]
    majority = majority_rates(rows)
    extra = [k for k in factors if k not in ("problem", "optimizer")]
    facets = facet_frames(rows, extra, orders)
    optimizers = levels(rows["optimizer"], "optimizer", orders)
    colors = palette(optimizers, "optimizer")
    styles = ["-", "--", "-.", ":"]
    ncols = min(len(facets), 2)
    fig, axes, grid = new_figure(len(facets), ncols, 3.0 if ncols > 1 else 3.4, sharex=False)
    iqms_of = []
    for ax, (title, frame) in zip(axes, facets, strict=True):
        taus, shares = profile_curves(frame, optimizers)
        facet_runs = runs[runs["combination"].isin(frame["combination"])]
        table = aggregate_table(facet_runs, majority, protocols=("tuned",))
        iqms_of.append(table[table["protocol"] == "tuned"].set_index("optimizer"))
        n_problems = frame["problem"].nunique()
        for i, opt in enumerate(optimizers):
            ax.step(
                taus,
                shares[opt],
                where="post",
                color=colors[opt],
                lw=2.2 - 0.3 * (i % 4),
                ls=styles[i % len(styles)],
                zorder=3 + i,
            )
        ax.set_xlim(0, taus[-1])
        ax.set_ylim(-0.03, 1.05)
        ax.set_yticks(
            np.linspace(0, 1, n_problems + 1) if n_problems <= 6 else np.linspace(0, 1, 6)
        )
        ax.yaxis.set_major_formatter(
            ticker.FuncFormatter(lambda v, _: f"{v:.2f}".rstrip("0").rstrip("."))
        )
        label = title
        if len(facets) > 1:
            parts = [f"{o} {_iqm(iqms_of[-1], o)}" for o in optimizers]
            # Two optimizers a line: a panel is half the figure's width.
            label += "\nIQM: " + ",\n".join(
                ", ".join(parts[i : i + 2]) for i in range(0, len(parts), 2)
            )
        if label:
            ax.set_title(label, fontsize=8)
    label_outer(
        grid,
        len(facets),
        "τ: gap in mean test accuracy to the best optimizer on a problem",
        "share of problems\nwithin τ of the best",
    )
    if len(facets) == 1:
        iqms = iqms_of[0]
        ordered = sorted(
            optimizers, key=lambda o: (-iqms["iqm"].get(o, -np.inf), optimizers.index(o))
        )
        labels = {o: f"{o} (IQM {_iqm(iqms, o)})" for o in optimizers}
    else:
        ordered, labels = optimizers, {o: o for o in optimizers}
    handles = [
        Line2D([], [], color=colors[o], lw=1.8, ls=styles[optimizers.index(o) % 4], label=labels[o])
        for o in ordered
    ]
    legend_below(fig, handles)
    fig.suptitle(spec.title + " (tuned learning rates)")
    return fig


def _iqm(table, optimizer) -> str:
    """An optimizer's IQM and interval from an `aggregate_table` indexed by optimizer."""
    if optimizer not in table.index:
        return "–"
    r = table.loc[optimizer]
    return f"{r['iqm']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
