"""Figures of a study, drawn from its tables (see `optreg.analysis.tables`).

The catalogue of figures (the factors each needs, the tables it reads, its
title and caption) is `optreg.report.figures`; this module draws them. Figures are
about 7 in wide, fit a report page (at most 4.5 in per row of panels), carry
generic titles, and keep their legends below the panels, off the data.

Factors beyond those a figure is about become extra panels (one per
combination of their values), so a figure never averages over a factor
silently; figures about cells name each cell by all its factor values.
Values of a factor are ordered as given in `orders` (typically the config's
lists), else in the package's canonical order, else sorted.

Every figure is drawn under its own seaborn style (`plt.rc_context`) and saved
atomically; the same tables give byte-identical PNG and PDF files.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Sequence

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from optreg.analysis.tables import read_table  # noqa: E402
from optreg.io import atomic_path  # noqa: E402
from optreg.naming import format_value  # noqa: E402
from optreg.records import NEAR_ZERO  # noqa: E402
from optreg.report.figures import FIGURES  # noqa: E402

matplotlib.use("Agg")


TABLES = ("summary", "tuning", "history", "runs", "pairs")


PROTOCOLS = ("tuned", "oneshot")


PAGE_WIDTH = 7.0  # inches: the text width of a report page


MAX_ROW_HEIGHT = 4.5  # inches per row of panels


PNG_DPI = 150


# Canonical order of categorical factor values (as in optreg.training.optimizers,
# optreg.training.models and the
# default config's problems).
KNOWN_ORDER = {
    "optimizer": ("sgd", "momentum", "rmsprop", "adam"),
    "activation": ("relu", "sigmoid", "tanh"),
    "penalty": ("none", "l1", "l1_prox", "l2", "wd"),
    "problem": ("mnist1d_mlp", "mnist1d_cnn", "digits_mlp", "digits_cnn", "cancer_mlp"),
}


FACTOR_LABELS = {
    "problem": "problem",
    "optimizer": "optimizer",
    "activation": "activation",
    "lr": "learning rate",
    "penalty": "penalty",
    "strength": "penalty strength",
    "momentum": "momentum",
    "epochs": "epochs",
    "batch_size": "batch size",
    "depth": "hidden layers",
    "width": "units per hidden layer",
}


PENALTY_LABELS = {
    "none": "no penalty",
    "l1": "L1 penalty (subgradient)",
    "l1_prox": "L1 proximal step",
    "l2": "L2 penalty",
    "wd": "decoupled weight decay",
}


PROTOCOL_LABELS = {"tuned": "tuned learning rate", "oneshot": "default learning rate (one-shot)"}


EDGE_MARK = "*"


MIN_COLOR_SPAN = 0.02  # accuracy range of the heatmap colormap, at least


CI_NOTE = "95% bootstrap CI over seeds"


ROW_STEP = 0.065  # height of a row of markers below the data (lr_sensitivity), in accuracy


Orders = dict[str, Sequence] | None


def _style() -> dict:
    """Seaborn's whitegrid/paper style as rcParams, applied per figure (no global state)."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.0)}
    rc.update({"figure.dpi": 100, "savefig.dpi": PNG_DPI, "legend.frameon": False})
    return rc


def _need(frame: pd.DataFrame, columns, table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {table} table has no column(s) {missing}")


def _protocol(summary: pd.DataFrame, protocol: str) -> pd.DataFrame:
    _need(summary, ["protocol"], "summary")
    rows = summary[summary["protocol"] == protocol]
    if rows.empty:
        raise ValueError(f"the summary table has no rows for protocol {protocol!r}")
    return rows


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
                f"{_factor_label(k)} {_value_label(k, v)}"
                for k, v in zip(keys, values, strict=True)
            )
            out.append((label, frame[mask]))
    return out


def _factor_label(key: str) -> str:
    return FACTOR_LABELS.get(key, key.replace("_", " "))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _value_label(key: str, value) -> str:
    if key == "penalty":
        return PENALTY_LABELS.get(value, str(value))
    return format_value(_plain(value))


def _cell_label(row, factors: list[str]) -> str:
    """A cell's short name from its factor values: 'relu+adam', 'l1 0.001', 'none'."""
    label = ""
    for key in factors:
        if key == "strength" and row.get("penalty") == "none":
            continue  # the unpenalized cell has no strength
        text = format_value(_plain(row[key]))
        sep = " " if key == "strength" else "+"
        label = f"{label}{sep}{text}" if label else text
    return label


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


def _ncols(n_panels: int) -> int:
    """Panels per row: up to three side by side, four as two by two."""
    return 2 if n_panels == 4 else max(1, min(n_panels, 3))


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


def _log_ticks(ax, values, crowded: bool | None = None) -> None:
    """A log x axis with a tick at every value; only powers of ten labelled when crowded."""
    values = sorted({float(v) for v in values if v > 0})
    ax.set_xscale("log")
    if not values:
        return
    if crowded is None:
        # Narrow panels (several in a row) fit about four labels.
        width = ax.get_position().width * ax.figure.get_figwidth()
        crowded = len(values) > (4 if width < 3.0 else 7)
    decades = [v for v in values if math.isclose(math.log10(v), round(math.log10(v)))]
    labels = [format_value(v) if not crowded or not decades or v in decades else "" for v in values]
    ax.set_xticks(values, labels)
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    lo, hi = values[0], values[-1]
    pad = (hi / lo) ** 0.08 if hi > lo else 2.0
    ax.set_xlim(lo / pad, hi * pad)


def _half_ci(low, high) -> float:
    return (high - low) / 2 if pd.notna(low) and pd.notna(high) else math.nan


def _xerr(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2 x n) from a metric's interval; zero where it is undefined."""
    mean = frame[f"{metric}_mean"].to_numpy(float)
    low = frame[f"{metric}_ci_low"].to_numpy(float)
    high = frame[f"{metric}_ci_high"].to_numpy(float)
    err = np.vstack([mean - low, high - mean])
    return np.clip(np.nan_to_num(err), 0, None)


def _legend_below(fig: Figure, handles: list) -> None:
    """One legend for all panels, below them, in the fewest rows that fit the page width."""
    if not handles:
        return
    renderer = fig.canvas.get_renderer()
    page = fig.get_figwidth() * fig.dpi * 0.98
    for rows in range(1, len(handles) + 1):
        # Balanced rows: entries fill the columns top to bottom.
        ncol = math.ceil(len(handles) / rows)
        legend = fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=ncol,
            handlelength=1.8,
            columnspacing=1.2,
        )
        if ncol == 1 or legend.get_window_extent(renderer).width <= page:
            return
        legend.remove()


def _diverged_marker(where: str = "at bottom") -> Line2D:
    label = "≥1 seed diverged" + (f" ({where})" if where else "")
    return Line2D([], [], ls="none", marker="x", mew=1.5, color="0.3", label=label)


def _mark_row(ax, xs, y: float, color, marker: str = "x", axes_y: bool = False) -> None:
    """Markers at data x `xs` in a row at height `y` (data, or axes coordinates if `axes_y`)."""
    if len(xs):
        star = marker == "*"
        where = blended_transform_factory(ax.transData, ax.transAxes) if axes_y else ax.transData
        ax.plot(
            xs,
            [y] * len(xs),
            transform=where,
            ls="none",
            marker=marker,
            markersize=8 if star else 5,
            mew=0.4 if star else 1.5,
            mfc=color,
            mec="black" if star else color,
            color=color,
            clip_on=False,
            zorder=4,
        )


def _mark_bottom(ax, xs, color, level: int = 0) -> None:
    """Crosses in row `level` at the bottom of the panel, at data x `xs`."""
    _mark_row(ax, xs, 0.035 + 0.05 * level, color, "x", axes_y=True)


def _test_accuracy_heatmap(tables, factors, orders) -> Figure:
    summary = tables["summary"]
    _need(summary, ["optimizer", "activation", "protocol", "lr", "test_accuracy_mean"], "summary")
    extra = [k for k in factors if k not in ("optimizer", "activation")]
    facets = _facets(summary, extra, orders)
    values = summary.loc[summary["protocol"].isin(PROTOCOLS), "test_accuracy_mean"].dropna()
    vmin, vmax = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    # A floor on the color range, so that differences well inside the seeds' CIs do not
    # span the whole colormap.
    vmin = min(vmin, vmax - MIN_COLOR_SPAN)
    rows_all = _levels(summary["activation"], "activation", orders)
    cols_all = _levels(summary["optimizer"], "optimizer", orders)
    row_height = max(2.3, 1.05 + 0.62 * len(rows_all)) + (0.2 if extra else 0)
    fig, axes, _ = _figure(2 * len(facets), 2, row_height)
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
                half = _half_ci(row.get("test_accuracy_ci_low"), row.get("test_accuracy_ci_high"))
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
            xticklabels=[_value_label("optimizer", v) for v in cols_all],
            yticklabels=[_value_label("activation", v) for v in rows_all],
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
    fig.suptitle(FIGURES["test_accuracy_heatmap"].title)
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


def _cells(summary: pd.DataFrame, factors: list[str], orders: Orders) -> list[tuple[str, str]]:
    """(combination, label) of every cell, in the canonical order of its factor values."""
    cells = summary.drop_duplicates("combination")
    keys = [k for k in factors if k in cells.columns]
    ranks = {k: {v: i for i, v in enumerate(_levels(cells[k], k, orders))} for k in keys}
    order = sorted(
        range(len(cells)), key=lambda i: [ranks[k].get(cells[k].iloc[i], -1) for k in keys]
    )
    return [(cells["combination"].iloc[i], _cell_label(cells.iloc[i], factors)) for i in order]


def _protocols(tables, factors, orders) -> Figure:
    summary = tables["summary"]
    _need(summary, ["combination", *factors, "protocol", "lr", "test_accuracy_mean"], "summary")
    by = {p: summary[summary["protocol"] == p].set_index("combination") for p in PROTOCOLS}
    cells = _cells(summary, factors, orders)
    tuned_mean = by["tuned"]["test_accuracy_mean"]

    # Best tuned accuracy on top; cells without one (all seeds diverged) at the bottom.
    def rank(cell):
        mean = tuned_mean.get(cell[0], math.nan)
        return (pd.isna(mean), -mean if pd.notna(mean) else 0.0)

    cells.sort(key=rank)
    n = len(cells)
    fig, axes, _ = _figure(1, 1, max(2.6, 1.0 + 0.21 * n), sharex=False, sharey=False)
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
                xerr=_xerr(row, "test_accuracy") if "test_accuracy_ci_low" in row else None,
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
    ax.set_xlabel("test accuracy (mean and 95% bootstrap CI over the evaluation seeds)")
    ax.set_ylabel(" + ".join(_factor_label(k) for k in factors) if len(factors) < 4 else "cell")
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
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["protocols"].title)
    return fig


def _lr_sensitivity(tables, factors, orders) -> Figure:
    tuning = tables["tuning"]
    _need(tuning, [*factors, "lr", "selected", "n_diverged", "val_accuracy_mean"], "tuning")
    hue, col, extra = factors[0], (factors[1] if len(factors) > 1 else None), factors[2:]
    reference = None
    if hue == "penalty" and col == "strength":
        # The unpenalized cell has no strength: it is the reference in every strength panel.
        reference = tuning[tuning["penalty"] == "none"]
        tuning = tuning[tuning["penalty"] != "none"]
        if tuning.empty:
            tuning, reference = reference, None
    hue_levels = _levels(tuning[hue], hue, orders)
    colors = _palette(hue_levels + ([] if reference is None else ["none"]), hue)
    col_levels = _levels(tuning[col], col, orders) if col else [None]
    panels = []
    for row_label, row_frame in _facets(tuning, extra, orders):
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
                for x in (f"{_factor_label(col)} {_value_label(col, c)}" if col else "", row_label)
                if x
            )
            panels.append((title, frame))
    lines = (["none"] if reference is not None else []) + hue_levels
    ncols = _ncols(len(col_levels))
    fig, axes, grid = _figure(len(panels), ncols, 3.2 if ncols > 1 else 3.6)
    lrs = sorted(tables["tuning"]["lr"].unique())
    any_diverged = False
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
                marker="o",
                markersize=3,
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
            _mark_row(ax, line.loc[line["selected"].astype(bool), "lr"], row, color, "*")
            bad = line[line["n_diverged"] > 0]
            if not bad.empty:
                any_diverged = True
                _mark_row(ax, bad["lr"], row, color, "x")
        _log_ticks(ax, lrs)
        # Below zero, one row per line: its selected rate and the rates where it diverged.
        ax.set_ylim(-ROW_STEP * (len(lines) + 1), 1.03)
        ax.set_yticks(np.linspace(0, 1, 5))
        ax.axhline(0, color="0.6", lw=0.8, zorder=1)
        if title:
            ax.set_title(title, fontsize=9)
    _label_outer(
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
            marker="o",
            markersize=3,
            lw=1.4,
            ls="--" if reference is not None and h == "none" else "-",
            label=_value_label(hue, h),
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
        handles.append(_diverged_marker(""))
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["lr_sensitivity"].title)
    return fig


def _learning_curves(tables, factors, orders) -> Figure:
    history = tables["history"]
    _need(history, [*factors, "phase", "protocol", "epoch", "val_accuracy"], "history")
    curves = history[(history["phase"] == "eval") & (history["protocol"] == "tuned")]
    if curves.empty:
        raise ValueError("the history table has no evaluation runs of the tuned protocol")
    extra = [k for k in factors if k not in ("optimizer", "activation")]
    optimizers = _levels(curves["optimizer"], "optimizer", orders)
    activations = _levels(curves["activation"], "activation", orders)
    colors = _palette(optimizers, "optimizer")
    panels = []
    for row_label, row_frame in _facets(curves, extra, orders):
        for act in activations:
            cells = row_frame[row_frame["activation"] == act]
            if not cells.empty:
                title = "\n".join(
                    x for x in (f"activation {_value_label('activation', act)}", row_label) if x
                )
                panels.append((title, cells))
    ncols = _ncols(len(activations))
    fig, axes, grid = _figure(len(panels), ncols, 2.7 if ncols > 1 else 3.4)
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
    _label_outer(grid, len(panels), "epoch (log scale)", "validation accuracy\n(mean over seeds)")
    handles = [
        Line2D([], [], color=colors[o], lw=1.4, label=_value_label("optimizer", o))
        for o in optimizers
    ]
    handles.append(Patch(color="0.6", alpha=0.4, label="min–max over seeds"))
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["learning_curves"].title)
    return fig


def _strength_panel(ax, frame, penalties, colors, metric: str, dodge_lines: bool) -> bool:
    """One metric against strength: a line per penalty, the unpenalized cell as reference.

    Returns whether any seed of a drawn cell diverged.
    """
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
            yerr=_xerr(line, metric) if f"{metric}_ci_low" in line else None,
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
            _mark_bottom(ax, bad["strength"] * dodge, colors[p], i)
    return any_diverged


def _strength_legend(fig, penalties, colors, seen_none, any_diverged, band: bool) -> None:
    handles = [
        Line2D(
            [],
            [],
            color=colors[p],
            marker="o",
            markersize=3.5,
            lw=1.4,
            label=_value_label("penalty", p),
        )
        for p in penalties
    ]
    if seen_none:
        handles.append(Line2D([], [], color="0.35", lw=1.2, ls="--", label="no penalty"))
        if band:
            handles.append(Patch(color="0.5", alpha=0.25, label="no penalty, 95% CI"))
    if any_diverged:
        handles.append(_diverged_marker())
    _legend_below(fig, handles)


def _accuracy_vs_strength(tables, factors, orders) -> Figure:
    rows = _protocol(tables["summary"], "tuned")
    _need(rows, ["penalty", "strength", "n_diverged", "test_accuracy_mean"], "summary")
    extra = [k for k in factors if k not in ("penalty", "strength")]
    facets = _facets(rows, extra, orders)
    penalties = [p for p in _levels(rows["penalty"], "penalty", orders) if p != "none"]
    colors = _palette(penalties, "penalty")
    ncols = min(len(facets), 2)
    fig, axes, grid = _figure(len(facets), ncols, 3.2 if ncols > 1 else 3.6)
    strengths = [s for s in rows.loc[rows["penalty"] != "none", "strength"].unique() if s > 0]
    any_diverged = False
    for ax, (title, frame) in zip(axes, facets, strict=True):
        any_diverged |= _strength_panel(ax, frame, penalties, colors, "test_accuracy", True)
        _log_ticks(ax, strengths)
        if title:
            ax.set_title(title, fontsize=9)
    _label_outer(
        grid,
        len(facets),
        "penalty strength λ (log scale)",
        "test accuracy\n(mean over seeds, 95% CI)",
    )
    seen_none = bool((rows["penalty"] == "none").any())
    _strength_legend(fig, penalties, colors, seen_none, any_diverged, band=True)
    fig.suptitle(FIGURES["accuracy_vs_strength"].title)
    return fig


def _sparsity_vs_strength(tables, factors, orders) -> Figure:
    rows = _protocol(tables["summary"], "tuned")
    metrics = (
        ("zero_fraction", "exactly zero"),
        ("near_zero_fraction", f"magnitude below {format_value(NEAR_ZERO)}"),
    )
    _need(
        rows, ["penalty", "strength", "n_diverged", *(f"{m}_mean" for m, _ in metrics)], "summary"
    )
    extra = [k for k in factors if k not in ("penalty", "strength")]
    facets = _facets(rows, extra, orders)
    penalties = [p for p in _levels(rows["penalty"], "penalty", orders) if p != "none"]
    colors = _palette(penalties, "penalty")
    fig, axes, grid = _figure(2 * len(facets), 2, 3.0)
    strengths = [s for s in rows.loc[rows["penalty"] != "none", "strength"].unique() if s > 0]
    any_diverged = False
    panels = [(m, what, label, frame) for label, frame in facets for m, what in metrics]
    for ax, (metric, what, label, frame) in zip(axes, panels, strict=True):
        any_diverged |= _strength_panel(ax, frame, penalties, colors, metric, False)
        _log_ticks(ax, strengths)
        # A little room beyond [0, 1] keeps a line at 0 or 1 off the frame.
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_title("\n".join(x for x in (f"weights {what}", label) if x), fontsize=9)
    _label_outer(
        grid, len(panels), "penalty strength λ (log scale)", "share of weights\n(mean over seeds)"
    )
    seen_none = bool((rows["penalty"] == "none").any())
    _strength_legend(fig, penalties, colors, seen_none, any_diverged, band=False)
    fig.suptitle(FIGURES["sparsity_vs_strength"].title)
    return fig


def _time_to_target(tables, factors, orders) -> Figure:
    rows = _protocol(tables["summary"], "tuned")
    _need(
        rows,
        ["combination", *factors, "seeds", "reached_target", "epochs_to_target_mean"],
        "summary",
    )
    rows = rows.set_index("combination", drop=False)
    cells = _cells(rows, factors, orders)
    means = rows["epochs_to_target_mean"]
    # Fastest on top; cells where no seed reached the target at the bottom.
    cells.sort(key=lambda c: (pd.isna(means[c[0]]), means[c[0]] if pd.notna(means[c[0]]) else 0))
    n = len(cells)
    fig, axes, _ = _figure(1, 1, max(2.4, 1.0 + 0.21 * n), sharex=False, sharey=False)
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
        err = _xerr(row, "epochs_to_target") if "epochs_to_target_ci_low" in row else None
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
    ax.set_ylabel(" + ".join(_factor_label(k) for k in factors) if len(factors) < 4 else "cell")
    fig.suptitle(FIGURES["time_to_target"].title + " (tuned learning rate)")
    return fig


def profile_curves(frame: pd.DataFrame, optimizers: list) -> tuple[np.ndarray, dict, dict]:
    """Performance profile of `optimizers` over the problems in `frame` (tuned rows).

    Returns the τ grid, each optimizer's share of problems within τ of the best one
    on that problem (a step function of τ), and each optimizer's mean rank (1 = best;
    a missing or undefined accuracy ranks last).
    """
    acc = frame.pivot_table(
        index="problem",
        columns="optimizer",
        values="test_accuracy_mean",
        aggfunc="first",
        dropna=False,
    ).reindex(columns=optimizers)
    best = acc.max(axis=1)
    gaps = (best.to_numpy()[:, None] - acc.to_numpy()).clip(min=0)
    gaps = np.where(np.isnan(gaps), np.inf, gaps)
    finite = gaps[np.isfinite(gaps)]
    largest = float(finite.max()) if finite.size else 0.0
    end = largest * 1.08 if largest > 0 else 0.01
    taus = np.unique(np.concatenate([[0.0], finite, [end]]))
    shares = {
        o: (gaps[:, j][None, :] <= taus[:, None]).mean(axis=1) for j, o in enumerate(optimizers)
    }
    ranks = acc.rank(axis=1, ascending=False, method="average", na_option="bottom").mean(axis=0)
    return taus, shares, ranks.to_dict()


def _performance_profile(tables, factors, orders) -> Figure:
    rows = _protocol(tables["summary"], "tuned")
    _need(rows, ["problem", "optimizer", "test_accuracy_mean"], "summary")
    extra = [k for k in factors if k not in ("problem", "optimizer")]
    facets = _facets(rows, extra, orders)
    optimizers = _levels(rows["optimizer"], "optimizer", orders)
    colors = _palette(optimizers, "optimizer")
    styles = ["-", "--", "-.", ":"]
    ncols = min(len(facets), 2)
    fig, axes, grid = _figure(len(facets), ncols, 3.0 if ncols > 1 else 3.4, sharex=False)
    ranks_of = []
    for ax, (title, frame) in zip(axes, facets, strict=True):
        taus, shares, ranks = profile_curves(frame, optimizers)
        ranks_of.append(ranks)
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
            label += "\nmean rank: " + ", ".join(f"{o} {ranks[o]:.2f}" for o in optimizers)
        if label:
            ax.set_title(label, fontsize=8)
    _label_outer(
        grid,
        len(facets),
        "τ: gap in mean test accuracy to the best optimizer on a problem",
        "share of problems\nwithin τ of the best",
    )
    if len(facets) == 1:
        ranks = ranks_of[0]
        ordered = sorted(optimizers, key=lambda o: (ranks[o], optimizers.index(o)))
        labels = {o: f"{o} (mean rank {ranks[o]:.2f})" for o in optimizers}
    else:
        ordered, labels = optimizers, {o: o for o in optimizers}
    handles = [
        Line2D([], [], color=colors[o], lw=1.8, ls=styles[optimizers.index(o) % 4], label=labels[o])
        for o in ordered
    ]
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["performance_profile"].title + " (tuned learning rates)")
    return fig


# How each figure of the catalogue (optreg.report.figures) is drawn.
def activation_gaps(runs: pd.DataFrame, pairs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per optimizer, depth, other activation (and any further factor): ReLU's test accuracy
    minus that activation's, paired over the evaluation seeds at the tuned rates, with its
    95% t-interval and whether the pair differs after Holm correction (the study's pairs)."""
    from optreg.analysis.stats import mean_ci

    _need(runs, ["phase", "protocol", "combination", "seed", "test_accuracy", *factors], "runs")
    tuned = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    holm = {}
    for r in pairs[pairs["protocol"] == "tuned"].to_dict("records"):
        holm[(r["cell_a"], r["cell_b"])] = holm[(r["cell_b"], r["cell_a"])] = r["p_holm"]
    keys = [k for k in factors if k != "activation"]
    rows = []
    for values, group in tuned.groupby(keys, sort=False):
        wide = group.pivot(index="seed", columns="activation", values="test_accuracy")
        cells = group.drop_duplicates("activation").set_index("activation")["combination"]
        if "relu" not in wide:
            continue
        for other in [a for a in wide.columns if a != "relu"]:
            gap = mean_ci((wide["relu"] - wide[other]).to_numpy())
            p = holm.get((cells["relu"], cells[other]), np.nan)
            rows.append(
                {
                    **dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=1)),
                    "activation": other,
                    "gap": gap["mean"],
                    "ci_low": gap["ci_low"],
                    "ci_high": gap["ci_high"],
                    "seeds": gap["n"],
                    "p_holm": p,
                    "significant": bool(np.isfinite(p) and p < 0.05),
                }
            )
    return pd.DataFrame(rows)


def _activation_gap_vs_depth(tables, factors, orders) -> Figure:
    gaps = activation_gaps(tables["runs"], tables["pairs"], factors)
    if gaps.empty:
        raise ValueError("no ReLU cell to compare with: the study has no activation 'relu'")
    extra = [k for k in factors if k not in ("optimizer", "activation", "depth")]
    panels = []
    for activation in _levels(gaps["activation"], "activation", orders):
        for label, frame in _facets(gaps[gaps["activation"] == activation], extra, orders):
            title = f"ReLU − {activation}" + (f", {label}" if label else "")
            panels.append((title, frame))
    fig, axes, grid = _figure(len(panels), min(len(panels), 2), 3.4)
    optimizers = _levels(gaps["optimizer"], "optimizer", orders)
    colors = _palette(optimizers, "optimizer")
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
    _label_outer(
        grid,
        len(panels),
        "hidden layers",
        "test accuracy gap, ReLU minus other\n(mean over paired seeds, 95% CI)",
    )
    handles = [Line2D([], [], color=colors[o], marker="o", label=o) for o in optimizers]
    handles += [
        Line2D([], [], color="0.3", marker="o", ls="", label="differs after Holm"),
        Line2D([], [], color="0.3", marker="o", ls="", mfc="white", label="within noise"),
    ]
    _legend_below(fig, handles)
    fig.suptitle(FIGURES["activation_gap_vs_depth"].title)
    return fig


DRAW: dict[str, Callable[[dict[str, pd.DataFrame], list[str], Orders], Figure]] = {
    "test_accuracy_heatmap": _test_accuracy_heatmap,
    "protocols": _protocols,
    "lr_sensitivity": _lr_sensitivity,
    "learning_curves": _learning_curves,
    "accuracy_vs_strength": _accuracy_vs_strength,
    "sparsity_vs_strength": _sparsity_vs_strength,
    "time_to_target": _time_to_target,
    "performance_profile": _performance_profile,
    "activation_gap_vs_depth": _activation_gap_vs_depth,
}


def _overlap(labels, renderer, gap: float = 2.0) -> bool:
    """Whether any two of the x tick `labels` come closer than `gap` pixels."""
    boxes = sorted(
        (t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()),
        key=lambda box: box.x0,
    )
    return any(a.x1 + gap > b.x0 for a, b in itertools.pairwise(boxes))


def _untangle_x_labels(fig: Figure) -> None:
    """Slant the x tick labels of each panel where they would run into each other: a study
    with more optimizers than the built-in four, long names of one's own, a wide rate grid."""
    fig.draw_without_rendering()  # lays the figure out, so that labels have their places
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = ax.get_xticklabels()
        if _overlap(labels, renderer):
            for label in labels:
                label.set(rotation=30, ha="right", rotation_mode="anchor")


def make_figure(
    name: str, tables: dict[str, pd.DataFrame], factors: list[str], orders: Orders = None
) -> Figure:
    """Draw figure `name` from `tables` (keyed by table name: 'summary', 'tuning', 'history').

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
            + (f" and at least {spec.min_factors} factor(s)" if spec.min_factors else "")
            + f"; the study has {factors}"
        )
    missing = [t for t in spec.inputs if t not in tables]
    if missing:
        raise KeyError(f"figure {name!r} needs tables {missing}; got {sorted(tables)}")
    before = set(plt.get_fignums())
    try:
        with plt.rc_context(_style()):
            fig = DRAW[name](tables, factors, orders)
            _untangle_x_labels(fig)
            return fig
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
