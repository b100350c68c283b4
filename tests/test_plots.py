"""Figures drawn from real tables of a tiny trained matrix."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from optreg import data, metrics, plots, tables, train
from optreg.config import combinations
from optreg.figures import figures_for

OPT_FACTORS = ["optimizer", "activation", "lr"]
REG_FACTORS = ["penalty", "strength"]
CONFIG = {
    "dataset": {
        "name": "digits",
        "split_seed": 0,
        "validation_fraction": 0.2,
        "test_fraction": 0.2,
    },
    "defaults": {
        "optimizer": "adam",
        "activation": "relu",
        "lr": 0.01,
        "penalty": "none",
        "momentum": 0.9,
        "epochs": 2,
        "batch_size": 64,
        "hidden": [16],
    },
    "seeds": [0, 1],
    "studies": {
        "optimization": {
            "factors": {
                "optimizer": ["sgd", "adam"],
                "activation": ["relu", "tanh"],
                "lr": [0.01, 0.1],
            }
        },
        "regularization": {"factors": {"penalty": ["none", "l1", "l2"], "strength": [1e-4, 1e-2]}},
    },
}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """{study: (factors, tables)} built from metrics files written by run_job."""
    root = tmp_path_factory.mktemp("plots")
    data_path = root / "digits.pt"
    data.prepare("digits", data_path)
    threads = torch.get_num_threads()
    records: dict[str, list[dict]] = {"optimization": [], "regularization": []}
    try:
        for combo in combinations(CONFIG):
            paths = train.run_job(
                data_path=data_path,
                out_dir=root / combo.study / combo.id,
                study=combo.study,
                combination=combo.id,
                factors=combo.factors,
                settings=combo.settings,
                seeds=combo.seeds,
                threads=1,
            )
            records[combo.study] += [metrics.read_run(p) for p in paths]
    finally:
        torch.set_num_threads(threads)
    out = {}
    for study, factors in (("optimization", OPT_FACTORS), ("regularization", REG_FACTORS)):
        runs = tables.runs_table(records[study])
        summary = tables.summarize(runs, factors)
        out[study] = (
            factors,
            {
                "runs": runs,
                "history": tables.history_table(records[study]),
                "summary": summary,
                "selected": tables.select_learning_rates(summary, factors),
            },
        )
    return out


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_figures_for_each_study():
    assert figures_for(OPT_FACTORS) == [
        "test_accuracy_heatmap",
        "lr_sensitivity",
        "learning_curves",
    ]
    assert figures_for(REG_FACTORS) == ["accuracy_vs_strength", "sparsity_vs_strength"]
    assert figures_for(["lr"]) == []  # nothing to compare across learning rates
    assert figures_for(["optimizer", "activation"]) == ["test_accuracy_heatmap"]


def test_every_catalogued_figure_is_drawn():
    from optreg.figures import FIGURES

    assert set(plots.DRAW) == set(FIGURES)
    for spec in FIGURES.values():
        assert spec.title and spec.caption
        assert set(spec.inputs) <= set(plots.TABLES)


CASES = [("optimization", n) for n in figures_for(OPT_FACTORS)] + [
    ("regularization", n) for n in figures_for(REG_FACTORS)
]


@pytest.mark.parametrize(("study", "name"), CASES)
def test_every_figure_renders_and_saves(studies, tmp_path, study, name):
    factors, frames = studies[study]
    inputs = {k: frames[k] for k in plots.FIGURES[name].inputs}  # only what it declares
    fig = plots.make_figure(name, inputs, factors)
    width, height = fig.get_size_inches()
    assert width == pytest.approx(plots.PAGE_WIDTH)
    assert height <= plots.MAX_ROW_HEIGHT + 1e-9  # one row of panels here
    assert fig.get_suptitle()
    for ax in fig.axes:
        if ax.get_visible() and ax.get_label() != "<colorbar>":
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title()

    png, pdf = tmp_path / "out" / f"{name}.png", tmp_path / "out" / f"{name}.pdf"
    plots.save_figure(fig, png, pdf)
    assert not plt.fignum_exists(fig.number)  # closed
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in png.parent.iterdir()) == sorted([png.name, pdf.name])


def test_heatmap_annotations_hold_the_selected_values(studies):
    factors, frames = studies["optimization"]
    selected = frames["selected"]
    fig = plots.make_figure("test_accuracy_heatmap", frames, factors)
    texts = _texts(fig)
    plt.close(fig)
    assert selected["selectable"].all()
    assert len(texts) == len(selected)
    for _, row in selected.iterrows():
        half = (row["test_accuracy_ci_high"] - row["test_accuracy_ci_low"]) / 2
        lr = f"lr {row['lr']:g}"
        expected = f"{row['test_accuracy_mean']:.3f}\n±{half:.3f}\n{lr}"
        assert any(t.startswith(expected) for t in texts), (expected, texts)


def test_heatmap_marks_cells_without_a_selectable_lr(studies):
    factors, frames = studies["optimization"]
    selected = frames["selected"].copy()
    blank = (selected["optimizer"] == "sgd") & (selected["activation"] == "tanh")
    selected.loc[blank, "selectable"] = False
    fig = plots.make_figure("test_accuracy_heatmap", {**frames, "selected": selected}, factors)
    texts = _texts(fig)
    plt.close(fig)
    assert sum("diverged" in t for t in texts) == 1
    assert len(texts) == len(selected)
    value = f"{selected.loc[blank, 'test_accuracy_mean'].iloc[0]:.3f}\n"
    if value not in {f"{v:.3f}\n" for v in selected.loc[~blank, "test_accuracy_mean"]}:
        assert not any(t.startswith(value) for t in texts)  # the blanked cell shows no value


def test_heatmap_without_lr_factor_omits_lr(studies):
    factors, frames = studies["optimization"]
    summary = frames["summary"]
    summary = summary[summary["lr"] == 0.1].drop(columns="lr")
    selected = tables.select_learning_rates(summary, ["optimizer", "activation"])
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"selected": selected}, ["optimizer", "activation"]
    )
    texts = _texts(fig)
    plt.close(fig)
    assert len(texts) == 4 and not any("lr" in t for t in texts)


def test_learning_curves_one_line_per_cell(studies):
    factors, frames = studies["optimization"]
    fig = plots.make_figure("learning_curves", frames, factors)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in panels]
    lines = [len(ax.get_lines()) for ax in panels]
    plt.close(fig)
    assert titles == ["activation relu", "activation tanh"]
    assert lines == [2, 2]  # sgd and adam at their selected lr


def test_make_figure_rejects_bad_requests(studies):
    factors, frames = studies["regularization"]
    with pytest.raises(KeyError, match="unknown figure"):
        plots.make_figure("nope", frames, factors)
    with pytest.raises(ValueError, match="needs factors"):
        plots.make_figure("test_accuracy_heatmap", frames, factors)
    with pytest.raises(KeyError, match="needs tables"):
        plots.make_figure("accuracy_vs_strength", {"runs": frames["runs"]}, factors)


def test_saved_files_are_reproducible(studies, tmp_path):
    factors, frames = studies["regularization"]
    digests = []
    for i in range(2):
        png, pdf = tmp_path / f"{i}.png", tmp_path / f"{i}.pdf"
        plots.save_figure(plots.make_figure("accuracy_vs_strength", frames, factors), png, pdf)
        digests.append((png.read_bytes(), pdf.read_bytes()))
    assert digests[0] == digests[1]
