"""Draw a figure of the catalogue (`optreg.report.figures`) from a study's tables, and save it.

Every figure is drawn under its own seaborn style (`plt.rc_context`) and saved
atomically; the same tables give byte-identical PNG and PDF files.
"""

from __future__ import annotations

import itertools
import os

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from optreg.analysis.tables import read_table
from optreg.io import atomic_path
from optreg.report.figures import FIGURES
from optreg.report.figures.style import PNG_DPI, Orders, rc_params


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
    name: str,
    tables: dict[str, pd.DataFrame],
    factors: list[str],
    orders: Orders = None,
    lr_free=(),
) -> Figure:
    """Draw figure `name` from `tables` (keyed by table name: 'summary', 'tuning', 'history').

    `orders` optionally maps a factor to the order of its values (e.g. the
    config's lists); the default is the package's canonical order, else sorted.
    """
    # `lr_free`: the optimizers that set their own step size (config: `lr_free`); each table
    # with an `optimizer` column gets an `lr_free` column the figures mark them by.
    if lr_free:
        tables = {
            key: frame.assign(lr_free=frame["optimizer"].isin(list(lr_free)))
            if "optimizer" in frame
            else frame
            for key, frame in tables.items()
        }
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
        with plt.rc_context(rc_params()):
            fig = spec.draw(tables, factors, orders, spec)
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
    name: str,
    tables: dict[str, str | os.PathLike],
    factors: list[str],
    png_path,
    pdf_path,
    lr_free=(),
) -> None:
    """Workflow entry: read the tables the figure needs from CSV, draw it, save PNG and PDF."""
    frames = {key: read_table(tables[key]) for key in FIGURES[name].inputs}
    save_figure(make_figure(name, frames, factors, lr_free=lr_free), png_path, pdf_path)
