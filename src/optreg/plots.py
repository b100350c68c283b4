"""Figures of a study, drawn from its tables (see `optreg.tables`).

The catalogue of figures (the factors each needs, the tables it reads, its
title and caption) is `optreg.figures`; this module draws them. Figures are
about 7 in wide, fit a report page, and carry generic titles.

Factors beyond those a figure is about become extra panels (one per
combination of their values), so a figure never averages over a factor
silently. Values of a factor are ordered as given in `orders` (typically the
config's lists), else in the package's canonical order, else sorted.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from .config import format_value  # noqa: E402
from .figures import FIGURES  # noqa: E402
from .io import atomic_path  # noqa: E402
from .metrics import NEAR_ZERO  # noqa: E402
from .tables import read_table  # noqa: E402

TABLES = ("summary", "selected", "history", "runs")
PAGE_WIDTH = 7.0  # inches: the text width of a report page
MAX_ROW_HEIGHT = 4.5  # inches per row of panels
PNG_DPI = 150
# Canonical order of categorical factor values (as in optreg.optim / optreg.models).
KNOWN_ORDER = {
    "optimizer": ("sgd", "momentum", "rmsprop", "adam"),
    "activation": ("relu", "sigmoid", "tanh"),
    "penalty": ("none", "l1", "l2"),
}
FACTOR_LABELS = {
    "optimizer": "optimizer",
    "activation": "activation",
    "lr": "learning rate",
    "penalty": "penalty",
    "strength": "penalty strength",
    "momentum": "momentum",
    "epochs": "epochs",
    "batch_size": "batch size",
    "hidden": "hidden units",
}
PENALTY_LABELS = {"none": "no penalty", "l1": "L1", "l2": "L2"}
EDGE_MARK = "*"
MIN_COLOR_SPAN = 0.02  # accuracy range of the heatmap colormap, at least

Orders = dict[str, Sequence] | None


# ---------------------------------------------------------------- helpers


def _style() -> dict:
    """Seaborn's whitegrid/paper style as rcParams, applied per figure (no global state)."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.0)}
    rc.update({"figure.dpi": 100, "savefig.dpi": PNG_DPI, "legend.frameon": False})
    return rc


def _levels(values, key: str, orders: Orders = None) -> list:
    """Distinct values of factor `key`, in the preferred order."""
    uniq = list(dict.fromkeys(v for v in values if not pd.isna(v)))
    preferred = list((orders or {}).get(key) or KNOWN_ORDER.get(key, ()))
    known = [v for v in preferred if v in uniq]
    rest = [v for v in uniq if v not in known]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        rest = sorted(rest)
    return known + rest


def _facets(frame: pd.DataFrame, keys: list[str], orders: Orders) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) for each combination of `keys` present in `frame`; one unlabeled if none."""
    if not keys:
        return [("", frame)]
    levels = [_levels(frame[k], k, orders) for k in keys]
    out = []
    for values in itertools.product(*levels):
        mask = np.ones(len(frame), dtype=bool)
        for k, v in zip(keys, values, strict=True):
            mask &= (frame[k] == v).to_numpy()
        if mask.any():
            label = ", ".join(
                f"{_factor_label(k)} {format_value(v)}" for k, v in zip(keys, values, strict=True)
            )
            out.append((label, frame[mask]))
    return out


def _factor_label(key: str) -> str:
    return FACTOR_LABELS.get(key, key.replace("_", " "))


def _value_label(key: str, value) -> str:
    if key == "penalty":
        return PENALTY_LABELS.get(value, str(value))
    return format_value(value.item() if isinstance(value, np.generic) else value)


def _palette(levels: list, key: str) -> dict:
    """A colorblind-safe color per level; canonical values keep their color across figures."""
    colors = sns.color_palette("colorblind", 10)
    known = list(KNOWN_ORDER.get(key, ()))
    out, spare = {}, len(known)
    for v in levels:
        if v in known:
            out[v] = colors[known.index(v) % len(colors)]
        else:
            out[v] = colors[spare % len(colors)]
            spare += 1
    return out


def _figure(n_panels: int, ncols: int, row_height: float, sharey: bool = True, sharex: bool = True):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(PAGE_WIDTH, min(row_height, MAX_ROW_HEIGHT) * nrows),
        sharex=sharex,
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels], axes


def _label_outer(axes_grid, n_panels: int, xlabel: str, ylabel: str) -> None:
    """Axis labels on the left column and the bottom panel of each column only."""
    ncols = axes_grid.shape[1]
    for i, ax in enumerate(axes_grid.flat[:n_panels]):
        row, col = divmod(i, ncols)
        below = (row + 1) * ncols + col
        ax.set_xlabel(xlabel if below >= n_panels else "")
        ax.set_ylabel(ylabel if col == 0 else "")


def _log_ticks(ax, values) -> None:
    values = sorted(set(float(v) for v in values if v > 0))
    ax.set_xscale("log")
    if values:
        # Every grid value gets a tick; in narrow panels only powers of ten are labelled.
        crowded = len(values) > 4 and len(ax.figure.axes) > 1
        labels = [
            format_value(v)
            if not crowded or math.isclose(math.log10(v), round(math.log10(v)))
            else ""
            for v in values
        ]
        ax.set_xticks(values, labels)
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        lo, hi = values[0], values[-1]
        pad = (hi / lo) ** 0.08 if hi > lo else 2.0
        ax.set_xlim(lo / pad, hi * pad)


def _metric_rows(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        raise ValueError(f"the summary table has no rows for metric {metric!r}")
    return rows


def _half_ci(low, high) -> float:
    return (high - low) / 2 if pd.notna(low) and pd.notna(high) else math.nan


def _legend_below(fig: Figure, handles: list) -> None:
    """One legend for all panels, below them; two rows when one would be wider than the page."""
    if handles:
        # About how many characters fit across the page at the legend's font size.
        width = sum(len(h.get_label()) + 6 for h in handles)
        ncol = len(handles) if width <= 105 else math.ceil(len(handles) / 2)
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=ncol,
            handlelength=1.8,
            columnspacing=1.4,
        )


# ---------------------------------------------------------------- figures


def _test_accuracy_heatmap(tables, factors, orders) -> Figure:
    selected = tables["selected"]
    extra = [k for k in factors if k not in ("optimizer", "activation", "lr")]
    show_lr = "lr" in factors
    facets = _facets(selected, extra, orders)
    values = selected.loc[selected["selectable"].astype(bool), "test_accuracy_mean"].dropna()
    vmin, vmax = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    # A floor on the color range, so that differences well inside the seeds' CIs do not
    # span the whole colormap.
    vmin = min(vmin, vmax - MIN_COLOR_SPAN)
    rows_all = _levels(selected["activation"], "activation", orders)
    cols_all = _levels(selected["optimizer"], "optimizer", orders)
    row_height = max(2.4, 0.9 + 0.62 * len(rows_all)) + (0.25 if extra else 0)
    fig, axes, _ = _figure(len(facets), 2 if extra else 1, row_height, sharey=True, sharex=True)
    any_edge = False
    for ax, (label, frame) in zip(axes, facets, strict=True):
        dup = frame.duplicated(["activation", "optimizer"])
        if dup.any():
            raise ValueError("the selected table has several rows per (activation, optimizer) cell")
        cell = frame.set_index(["activation", "optimizer"])
        grid = np.full((len(rows_all), len(cols_all)), np.nan)
        text = np.full(grid.shape, "", dtype=object)
        blank = np.zeros(grid.shape, dtype=bool)
        for i, act in enumerate(rows_all):
            for j, opt in enumerate(cols_all):
                if (act, opt) not in cell.index:
                    blank[i, j] = True
                    continue
                row = cell.loc[(act, opt)]
                if not bool(row["selectable"]) or pd.isna(row["test_accuracy_mean"]):
                    blank[i, j] = True
                    ax.text(
                        j + 0.5,
                        i + 0.5,
                        "diverged\nat every lr" if show_lr else "diverged",
                        ha="center",
                        va="center",
                        color="0.25",
                        fontsize=8,
                        fontstyle="italic",
                    )
                    continue
                grid[i, j] = row["test_accuracy_mean"]
                lines = [f"{row['test_accuracy_mean']:.3f}"]
                half = _half_ci(row["test_accuracy_ci_low"], row["test_accuracy_ci_high"])
                if pd.notna(half):
                    lines.append(f"±{half:.3f}")
                if show_lr:
                    edge = bool(row.get("lr_on_grid_edge", False))
                    any_edge |= edge
                    lines.append(
                        f"lr {format_value(float(row['lr']))}" + (EDGE_MARK if edge else "")
                    )
                text[i, j] = "\n".join(lines)
        ax.set_facecolor("0.88")
        sns.heatmap(
            grid,
            mask=blank,
            annot=text,
            fmt="",
            cmap="viridis",
            vmin=vmin,
            vmax=vmax,
            cbar=False,
            linewidths=1.0,
            linecolor="white",
            annot_kws={"fontsize": 8, "linespacing": 1.15},
            xticklabels=[_value_label("optimizer", v) for v in cols_all],
            yticklabels=[_value_label("activation", v) for v in rows_all],
            ax=ax,
        )
        ax.tick_params(axis="y", rotation=0)
        ax.tick_params(axis="both", length=0)
        ax.grid(False)
        ax.set_xlabel("optimizer")
        ax.set_ylabel("activation" if ax.get_subplotspec().is_first_col() else "")
        if label:
            ax.set_title(label, fontsize=9)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap="viridis")
    fig.colorbar(mappable, ax=axes, label="test accuracy\n(mean over seeds)", shrink=0.9, pad=0.02)
    notes = ["± half-width of the CI over seeds"]
    if show_lr:
        notes.append("lr: learning rate selected on validation accuracy")
    if any_edge:
        notes.append(f"{EDGE_MARK} on the edge of the lr grid")
    fig.supxlabel("; ".join(notes), fontsize=7, color="0.3")
    fig.suptitle(FIGURES["test_accuracy_heatmap"].title)
    return fig


def _lr_sensitivity(tables, factors, orders) -> Figure:
    rows = _metric_rows(tables["summary"], "val_accuracy")
    others = [k for k in factors if k != "lr"]
    hue, col, extra = others[0], (others[1] if len(others) > 1 else None), others[2:]
    hue_levels = _levels(rows[hue], hue, orders)
    colors = _palette(hue_levels, hue)
    col_levels = _levels(rows[col], col, orders) if col else [None]
    panels = []
    for row_label, row_frame in _facets(rows, extra, orders):
        for c in col_levels:
            frame = row_frame if c is None else row_frame[row_frame[col] == c]
            if not frame.empty:
                title = "\n".join(
                    x
                    for x in (
                        f"{_factor_label(col)} {_value_label(col, c)}" if col else "",
                        row_label,
                    )
                    if x
                )
                panels.append((title, frame))
    ncols = min(len(col_levels), 3)
    fig, axes, grid = _figure(len(panels), ncols, 3.0 if ncols > 1 else 3.6)
    lrs = sorted(rows["lr"].unique())
    any_diverged = False
    for ax, (title, frame) in zip(axes, panels, strict=True):
        marker_y = blended_transform_factory(ax.transData, ax.transAxes)
        for h_index, h in enumerate(hue_levels):
            line = frame[frame[hue] == h].sort_values("lr")
            if line.empty:
                continue
            color = colors[h]
            ax.plot(line["lr"], line["mean"], marker="o", markersize=3.5, lw=1.5, color=color)
            ax.fill_between(
                line["lr"], line["ci_low"], line["ci_high"], color=color, alpha=0.15, lw=0
            )
            bad = line[line["n_diverged"] > 0]
            if not bad.empty:
                any_diverged = True
                ax.plot(
                    bad["lr"],
                    [0.035 + 0.035 * h_index] * len(bad),
                    transform=marker_y,
                    ls="none",
                    marker="x",
                    markersize=5,
                    mew=1.5,
                    color=color,
                    clip_on=False,
                )
        _log_ticks(ax, lrs)
        ax.set_ylim(0, 1.02)
        if title:
            ax.set_title(title, fontsize=9)
    _label_outer(
        grid,
        len(panels),
        "learning rate (log scale)",
        "validation accuracy\n(mean over seeds, CI band)",
    )
    handles = [
        Line2D(
            [], [], color=colors[h], marker="o", markersize=3.5, lw=1.5, label=_value_label(hue, h)
        )
        for h in hue_levels
    ]
    if any_diverged:
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="x",
                mew=1.5,
                color="0.3",
                label="≥1 seed diverged (marked at bottom)",
            )
        )
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["lr_sensitivity"].title)
    return fig


def _learning_curves(tables, factors, orders) -> Figure:
    history, selected = tables["history"], tables["selected"]
    extra = [k for k in factors if k not in ("optimizer", "activation", "lr")]
    chosen = selected[selected["selectable"].astype(bool)]
    curves = history[history["combination"].isin(chosen["combination"])]
    if curves.empty:
        raise ValueError("no learning curves: no cell has a selectable learning rate")
    optimizers = _levels(selected["optimizer"], "optimizer", orders)
    activations = _levels(selected["activation"], "activation", orders)
    colors = _palette(optimizers, "optimizer")
    panels = []
    for row_label, row_frame in _facets(selected, extra, orders):
        for act in activations:
            cells = row_frame[row_frame["activation"] == act]
            if not cells.empty:
                title = "\n".join(
                    x for x in (f"activation {_value_label('activation', act)}", row_label) if x
                )
                panels.append((title, cells))
    ncols = min(len(activations), 3)
    fig, axes, grid = _figure(len(panels), ncols, 3.0 if ncols > 1 else 3.6)
    low = 1.0
    for ax, (title, cells) in zip(axes, panels, strict=True):
        missing = []
        for opt in optimizers:
            cell = cells[cells["optimizer"] == opt]
            if cell.empty:
                continue
            if not bool(cell["selectable"].iloc[0]):
                missing.append(_value_label("optimizer", opt))
                continue
            per_epoch = (
                curves[curves["combination"] == cell["combination"].iloc[0]]
                .groupby("epoch")["val_accuracy"]
                .agg(["mean", "min", "max"])
            )
            color = colors[opt]
            ax.plot(per_epoch.index, per_epoch["mean"], color=color, lw=1.5)
            ax.fill_between(
                per_epoch.index, per_epoch["min"], per_epoch["max"], color=color, alpha=0.18, lw=0
            )
            low = min(low, float(per_epoch["min"].min()))
        if missing:
            ax.text(
                0.98,
                0.03,
                "all lrs diverged: " + ", ".join(missing),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.3",
            )
        ax.set_title(title, fontsize=9)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=6))
        ax.margins(x=0.04)  # keeps the first and last epoch labels of neighbours apart
    axes[0].set_ylim(max(0.0, math.floor(low * 20) / 20 - 0.02), 1.0)
    _label_outer(grid, len(panels), "epoch", "validation accuracy\n(mean over seeds, min–max band)")
    handles = [
        Line2D([], [], color=colors[o], lw=1.5, label=_value_label("optimizer", o))
        for o in optimizers
    ]
    handles.append(Patch(color="0.6", alpha=0.4, label="min–max over seeds"))
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["learning_curves"].title)
    return fig


def _versus_strength(
    tables, factors, orders, metric: str, ylabel: str, name: str, ylim: tuple[float, float] | None
) -> Figure:
    rows = _metric_rows(tables["summary"], metric)
    extra = [k for k in factors if k not in ("penalty", "strength")]
    facets = _facets(rows, extra, orders)
    penalties = _levels(rows["penalty"], "penalty", orders)
    colors = _palette(penalties, "penalty")
    ncols = min(len(facets), 2)
    fig, axes, grid = _figure(len(facets), ncols, 3.4 if ncols > 1 else 3.8)
    strengths = sorted(rows.loc[rows["penalty"] != "none", "strength"].unique())
    strengths = [s for s in strengths if s > 0]
    lines = [p for p in penalties if p != "none"]
    handles, seen_none, any_diverged = [], False, False
    for ax, (title, frame) in zip(axes, facets, strict=True):
        none = frame[frame["penalty"] == "none"]
        if not none.empty:
            seen_none = True
            ref = none.iloc[0]
            ax.axhline(ref["mean"], color="0.35", lw=1.2, ls="--", zorder=1)
            if pd.notna(ref["ci_low"]):
                ax.axhspan(ref["ci_low"], ref["ci_high"], color="0.5", alpha=0.15, lw=0, zorder=0)
            any_diverged |= bool(ref["n_diverged"] > 0)
        for i, p in enumerate(lines):
            line = frame[frame["penalty"] == p].sort_values("strength")
            if line.empty:
                continue
            # Dodge lines sideways a little (in log space) so error bars do not overlap.
            dodge = 10 ** (0.05 * (i - (len(lines) - 1) / 2))
            x = line["strength"].to_numpy() * dodge
            mean = line["mean"].to_numpy()
            err = np.vstack([mean - line["ci_low"].to_numpy(), line["ci_high"].to_numpy() - mean])
            ax.errorbar(
                x,
                mean,
                yerr=np.nan_to_num(err),
                color=colors[p],
                marker="o",
                markersize=4,
                lw=1.5,
                capsize=3,
                elinewidth=1.0,
                zorder=3,
            )
            bad = line[line["n_diverged"] > 0]
            if not bad.empty:
                any_diverged = True
                marker_y = blended_transform_factory(ax.transData, ax.transAxes)
                ax.plot(
                    bad["strength"] * dodge,
                    [0.035] * len(bad),
                    transform=marker_y,
                    ls="none",
                    marker="x",
                    mew=1.5,
                    color=colors[p],
                    clip_on=False,
                )
        _log_ticks(ax, strengths)
        if ylim:
            # A little room beyond [0, 1] keeps a line at 0 or 1 off the frame.
            ax.set_ylim(*ylim)
            ax.set_yticks(np.linspace(0, 1, 6))
        if title:
            ax.set_title(title, fontsize=9)
    _label_outer(grid, len(facets), "penalty strength λ (log scale)", ylabel)
    for p in lines:
        handles.append(
            Line2D(
                [],
                [],
                color=colors[p],
                marker="o",
                markersize=4,
                lw=1.5,
                label=f"{_value_label('penalty', p)} (mean ± CI)",
            )
        )
    if seen_none:
        handles.append(Line2D([], [], color="0.35", lw=1.2, ls="--", label="no penalty (mean)"))
        handles.append(Patch(color="0.5", alpha=0.25, label="no penalty CI"))
    if any_diverged:
        handles.append(
            Line2D(
                [],
                [],
                ls="none",
                marker="x",
                mew=1.5,
                color="0.3",
                label="≥1 seed diverged (marked at bottom)",
            )
        )
    _legend_below(fig, handles)
    fig.suptitle(FIGURES[name].title)
    return fig


def _accuracy_vs_strength(tables, factors, orders) -> Figure:
    return _versus_strength(
        tables,
        factors,
        orders,
        "test_accuracy",
        "test accuracy (mean over seeds)",
        "accuracy_vs_strength",
        None,
    )


def _sparsity_vs_strength(tables, factors, orders) -> Figure:

    return _versus_strength(
        tables,
        factors,
        orders,
        "near_zero_fraction",
        f"share of weights with |w| < {format_value(NEAR_ZERO)}\n(mean over seeds)",
        "sparsity_vs_strength",
        (-0.02, 1.02),
    )


# How each figure of the catalogue (optreg.figures) is drawn.
DRAW: dict[str, Callable[[dict[str, pd.DataFrame], list[str], Orders], Figure]] = {
    "test_accuracy_heatmap": _test_accuracy_heatmap,
    "lr_sensitivity": _lr_sensitivity,
    "learning_curves": _learning_curves,
    "accuracy_vs_strength": _accuracy_vs_strength,
    "sparsity_vs_strength": _sparsity_vs_strength,
}


# ---------------------------------------------------------------- API


def make_figure(
    name: str, tables: dict[str, pd.DataFrame], factors: list[str], orders: Orders = None
) -> Figure:
    """Draw figure `name` from `tables` (keyed by 'summary', 'selected', 'history', 'runs').

    `orders` optionally maps a factor to the order of its values (e.g. the
    config's lists); the default is the package's canonical order, else sorted.
    """
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    spec = FIGURES[name]
    factors = list(factors)
    if not spec.applies(factors):
        raise ValueError(
            f"figure {name!r} needs factors {sorted(spec.requires)}"
            + (f" and at least {spec.min_factors} factors" if spec.min_factors else "")
            + f"; the study has {factors}"
        )
    missing = [t for t in spec.inputs if t not in tables]
    if missing:
        raise KeyError(f"figure {name!r} needs tables {missing}; got {sorted(tables)}")
    before = set(plt.get_fignums())
    try:
        with plt.rc_context(_style()):
            return DRAW[name](tables, factors, orders)
    except Exception:
        for number in set(plt.get_fignums()) - before:  # no half-drawn figure left open
            plt.close(number)
        raise


def save_figure(fig: Figure, png_path: str | os.PathLike, pdf_path: str | os.PathLike) -> None:
    """Write `fig` as PNG (150 dpi) and PDF, each atomically, then close it."""
    try:
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=PNG_DPI, metadata={"Software": None})
        with atomic_path(pdf_path) as tmp:
            # No creation date: the same figure gives the same bytes on every run.
            fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    finally:
        plt.close(fig)


def plot_figure(
    name: str, tables: dict[str, str | os.PathLike], factors: list[str], png_path, pdf_path
) -> None:
    """Workflow entry: read the tables the figure needs from CSV, draw it, save PNG and PDF."""
    frames = {key: read_table(tables[key]) for key in FIGURES[name].inputs}
    save_figure(make_figure(name, frames, factors), png_path, pdf_path)
