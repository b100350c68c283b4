"""What every figure shares: its page geometry, style, labels, colours, the order of factor
values, and the helpers that lay out panels, ticks, error bars and legends.

Figures are about 7 in wide, fit a report page (at most 4.5 in per row of panels), carry
generic titles, and keep their legends below the panels, off the data. Factors beyond those
a figure is about become extra panels (one per combination of their values, `facet_frames`),
so a figure never averages over a factor silently; figures about cells name each cell by
all its factor values (`cell_label`). Values of a factor are ordered as given in `orders`
(typically the config's lists), else in the package's canonical order (`KNOWN_ORDER`), else
sorted.

Only drawing code imports this module (it imports matplotlib and seaborn); the figures'
modules import it inside their drawing functions, so the catalogue stays light.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from optreg.naming import format_value
from optreg.study.schema import config_schema
from optreg.training.registry import OPTIMIZERS

# Figures are drawn into files, never onto a screen.
matplotlib.use("Agg")


PROTOCOLS = ("tuned", "oneshot")


PAGE_WIDTH = 7.0  # inches: the text width of a report page


MAX_ROW_HEIGHT = 4.5  # inches per row of panels


PNG_DPI = 150


def _known_order() -> dict[str, tuple]:
    """Canonical order of categorical factor values, from where the package defines them."""
    enums = config_schema()["$defs"]
    return {
        "optimizer": tuple(OPTIMIZERS),
        "activation": tuple(enums["activation"]["enum"]),
        "penalty": tuple(enums["penalty"]["enum"]),
        # Configs name their problems, the package none: these are the default config's
        # (config/config.yaml), in its order; a test checks that they agree.
        "problem": (
            "mnist1d_mlp",
            "mnist1d_overfit",
            "mnist1d_cnn",
            "digits_mlp",
            "digits_cnn",
            "cancer_mlp",
        ),
    }


KNOWN_ORDER = _known_order()


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


CI_NOTE = "95% t-interval over seeds"


Orders = dict[str, Sequence] | None


def rc_params() -> dict:
    """Seaborn's whitegrid/paper style as rcParams, applied per figure (no global state)."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.0)}
    rc.update({"figure.dpi": 100, "savefig.dpi": PNG_DPI, "legend.frameon": False})
    return rc


def need_columns(frame: pd.DataFrame, columns, table: str) -> None:
    """Raise ValueError naming the columns of `columns` that table `table` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {table} table has no column(s) {missing}")


def protocol_rows(summary: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The summary's rows of one protocol ('tuned', 'oneshot'); ValueError if it has none."""
    need_columns(summary, ["protocol"], "summary")
    rows = summary[summary["protocol"] == protocol]
    if rows.empty:
        raise ValueError(f"the summary table has no rows for protocol {protocol!r}")
    return rows


def levels(values, key: str, orders: Orders = None) -> list:
    """Distinct values of factor `key`, in the preferred order."""
    uniq = list(dict.fromkeys(v for v in values if not pd.isna(v)))
    preferred = list((orders or {}).get(key) or KNOWN_ORDER.get(key, ()))
    known = [v for v in preferred if v in uniq]
    rest = [v for v in uniq if v not in known]
    with contextlib.suppress(TypeError):  # mixed types: keep the order of appearance
        rest = sorted(rest)
    return known + rest


def facet_frames(
    frame: pd.DataFrame, keys: list[str], orders: Orders
) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) for each combination of `keys` present in `frame`; one unlabeled if none."""
    if not keys:
        return [("", frame)]
    per_key = [levels(frame[k], k, orders) for k in keys]
    out = []
    for values in itertools.product(*per_key):
        mask = np.ones(len(frame), dtype=bool)
        for k, v in zip(keys, values, strict=True):
            mask &= (frame[k] == v).to_numpy()
        if mask.any():
            label = ", ".join(
                f"{factor_label(k)} {value_label(k, v)}" for k, v in zip(keys, values, strict=True)
            )
            out.append((label, frame[mask]))
    return out


def factor_label(key: str) -> str:
    """A factor's name on an axis or in a panel title: 'depth' -> 'hidden layers'."""
    return FACTOR_LABELS.get(key, key.replace("_", " "))


def _plain(value):
    # A NumPy scalar from a table, as the Python number format_value expects.
    return value.item() if isinstance(value, np.generic) else value


def value_label(key: str, value) -> str:
    """A factor value as a figure shows it (penalties by their full names)."""
    if key == "penalty":
        return PENALTY_LABELS.get(value, str(value))
    return format_value(_plain(value))


def cell_label(row, factors: list[str]) -> str:
    """A cell's short name from its factor values: 'relu+adam', 'l1 0.001', 'none'."""
    label = ""
    for key in factors:
        if key == "strength" and row.get("penalty") == "none":
            continue  # the unpenalized cell has no strength
        text = format_value(_plain(row[key]))
        sep = " " if key == "strength" else "+"
        label = f"{label}{sep}{text}" if label else text
    return label


def _slots(values: list, key: str) -> dict:
    """Each value's slot: a canonical value its place in the canonical order (the same in
    every figure), the others the next free ones in turn."""
    known = list(KNOWN_ORDER.get(key, ()))
    out, spare = {}, len(known)
    for v in values:
        if v in known:
            out[v] = known.index(v)
        else:
            out[v] = spare
            spare += 1
    return out


def _colors() -> list:
    # The colorblind palette's 10, then tab20's 10 light shades: 20 distinct colors before
    # any repeats (a study of 10-15 optimizers); markers (`markers`) tell them apart too.
    return list(sns.color_palette("colorblind", 10)) + list(sns.color_palette("tab20"))[1::2]


def palette(values: list, key: str) -> dict:
    """A distinct color per value (colorblind-safe for the first 10); canonical values keep
    their color across figures."""
    colors = _colors()
    return {v: colors[slot % len(colors)] for v, slot in _slots(values, key).items()}


# Curve markers, one per value in the palette's slots; not "*" nor "x", which mark a
# selected rate and a diverged one.
MARKERS = ("o", "s", "^", "D", "v", "P", "<", ">", "h", "p", "d", "H", "8", "X", "1", "2")


def markers(values: list, key: str) -> dict:
    """A marker per value, in the palette's slots: with its color, each curve is told apart."""
    return {v: MARKERS[slot % len(MARKERS)] for v, slot in _slots(values, key).items()}


def panel_columns(n_panels: int) -> int:
    """Panels per row: up to three side by side, four as two by two."""
    return 2 if n_panels == 4 else max(1, min(n_panels, 3))


def new_figure(
    n_panels: int, ncols: int, row_height: float, sharey: bool = True, sharex: bool = True
):
    """A page-wide figure of `n_panels` panels in rows of `ncols`, each row `row_height`
    inches high (at most MAX_ROW_HEIGHT): (figure, the panels, the grid of all axes)."""
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


def label_outer(axes_grid, n_panels: int, xlabel: str, ylabel: str) -> None:
    """Axis labels on the left column and the bottom panel of each column only."""
    ncols = axes_grid.shape[1]
    for i, ax in enumerate(axes_grid.flat[:n_panels]):
        row, col = divmod(i, ncols)
        below = (row + 1) * ncols + col
        ax.set_xlabel(xlabel if below >= n_panels else "")
        ax.set_ylabel(ylabel if col == 0 else "")


def log_ticks(ax, values, crowded: bool | None = None) -> None:
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


def half_ci(low, high) -> float:
    """Half the width of an interval; NaN where an end is undefined."""
    return (high - low) / 2 if pd.notna(low) and pd.notna(high) else math.nan


def error_bars(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2 x n) from a metric's interval; zero where it is undefined."""
    mean = frame[f"{metric}_mean"].to_numpy(float)
    low = frame[f"{metric}_ci_low"].to_numpy(float)
    high = frame[f"{metric}_ci_high"].to_numpy(float)
    err = np.vstack([mean - low, high - mean])
    return np.clip(np.nan_to_num(err), 0, None)


def legend_below(fig: Figure, handles: list) -> None:
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


def diverged_marker(where: str = "at bottom") -> Line2D:
    """The legend entry of the crosses that mark diverged seeds."""
    label = "≥1 seed diverged" + (f" ({where})" if where else "")
    return Line2D([], [], ls="none", marker="x", mew=1.5, color="0.3", label=label)


def mark_row(
    ax, xs, y: float, color, marker: str = "x", axes_y: bool = False, size: float | None = None
) -> None:
    """Markers at data x `xs` in a row at height `y` (data, or axes coordinates if `axes_y`);
    `size` in points (default: 8 for a star, 5 otherwise)."""
    if len(xs):
        star = marker == "*"
        where = blended_transform_factory(ax.transData, ax.transAxes) if axes_y else ax.transData
        ax.plot(
            xs,
            [y] * len(xs),
            transform=where,
            ls="none",
            marker=marker,
            markersize=size if size is not None else (8 if star else 5),
            mew=0.4 if star else 1.5,
            mfc=color,
            mec="black" if star else color,
            color=color,
            clip_on=False,
            zorder=4,
        )


def mark_bottom(ax, xs, color, level: int = 0) -> None:
    """Crosses in row `level` at the bottom of the panel, at data x `xs`."""
    mark_row(ax, xs, 0.035 + 0.05 * level, color, "x", axes_y=True)


def ordered_cells(
    summary: pd.DataFrame, factors: list[str], orders: Orders
) -> list[tuple[str, str]]:
    """(combination, label) of every cell, in the canonical order of its factor values."""
    first = summary.drop_duplicates("combination")
    keys = [k for k in factors if k in first.columns]
    ranks = {k: {v: i for i, v in enumerate(levels(first[k], k, orders))} for k in keys}
    order = sorted(
        range(len(first)), key=lambda i: [ranks[k].get(first[k].iloc[i], -1) for k in keys]
    )
    return [(first["combination"].iloc[i], cell_label(first.iloc[i], factors)) for i in order]
