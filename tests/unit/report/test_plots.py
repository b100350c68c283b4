"""Figures drawn from real tables of a tiny tuned-and-evaluated matrix."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from optreg.analysis import tables
from optreg.data.prepare import prepare
from optreg.report import plots
from optreg.report.figures import FIGURES, figures_for
from optreg.study import validate as cfg
from optreg.training import job as train

FACTORS = {
    "optimization": ["optimizer", "activation"],
    "regularization": ["penalty", "strength"],
    "problems": ["problem", "optimizer"],
}
# The smoke config, trimmed to what the figures need: two values of each factor, the
# proximal L1 step among the penalties, and MLPs only (a CNN adds time, not coverage).
SMALLER = {
    "optimization": {"optimizer": ["momentum", "adam"], "activation": ["relu", "sigmoid"]},
    "regularization": {"penalty": ["none", "l1", "l1_prox"], "strength": [0.0001, 0.01]},
    "problems": {"problem": ["digits_mlp", "cancer_mlp"], "optimizer": ["sgd", "adam"]},
}
TARGET = 0.5


@pytest.fixture(scope="module")
def studies(root, tmp_path_factory) -> dict[str, dict]:
    """{study: {table name: CSV path}} built by the package's own training and tables."""
    config = cfg.load_config(str(root / "config" / "smoke.yaml"))
    for study, factors in SMALLER.items():
        config["studies"][study]["factors"] = factors
    work = tmp_path_factory.mktemp("plots")
    jobs = cfg.jobs(config)
    datasets = {}
    for dataset in sorted({j.cell.settings["data"]["dataset"] for j in jobs}):
        datasets[dataset] = work / f"{dataset}.pt"
        prepare(dataset, datasets[dataset])
    threads = torch.get_num_threads()
    files: dict[str, list] = {s: [] for s in SMALLER}
    tuning: dict[tuple[str, str], list] = {}
    try:
        # Tuning jobs first: a cell's evaluation chooses its rate from them.
        for job in sorted(jobs, key=lambda j: j.phase == "eval"):
            key = (job.study, job.cell.id)
            written = train.run_job(
                data_path=datasets[job.cell.settings["data"]["dataset"]],
                out_dir=work / job.study / job.phase / job.cell.id / job.block,
                study=job.study,
                combination=job.cell.id,
                factors=job.cell.factors,
                settings=job.cell.settings,
                phase=job.phase,
                seeds=job.seeds,
                tuning_seeds=job.tuning_seeds,
                lr_grid=job.cell.lr_grid,
                default_lr=job.cell.default_lr,
                tuning_files=tuning.get(key, []) if job.phase == "eval" else [],
                threads=1,
            )
            if job.tunes:
                tuning.setdefault(key, []).extend(p for p in written if p.name.startswith("lr-"))
            files[job.study] += written
    finally:
        torch.set_num_threads(threads)
    out = {}
    for study, factors in FACTORS.items():
        base = work / study
        names = ("runs", "history", "tuning", "summary", "pairs")
        paths = {name: base / f"{name}.csv" for name in names}
        tables.collect_runs(files[study], paths["runs"], paths["history"])
        tables.summarize_study(
            runs_path=paths["runs"],
            history_path=paths["history"],
            factors=factors,
            target=TARGET,
            tuning_path=paths["tuning"],
            summary_path=paths["summary"],
            pairs_path=paths["pairs"],
        )
        out[study] = paths
    return out


@pytest.fixture(scope="module")
def frames(studies) -> dict[str, dict[str, pd.DataFrame]]:
    return {
        study: {name: tables.read_table(path) for name, path in paths.items()}
        for study, paths in studies.items()
    }


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _panels(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


# ---------------------------------------------------------------- the catalogue


def test_figures_for_each_study():
    assert figures_for(FACTORS["optimization"]) == [
        "test_accuracy_heatmap",
        "protocols",
        "lr_sensitivity",
        "learning_curves",
        "time_to_target",
    ]
    assert figures_for(FACTORS["regularization"]) == [
        "protocols",
        "lr_sensitivity",
        "accuracy_vs_strength",
        "sparsity_vs_strength",
        "time_to_target",
    ]
    assert figures_for(FACTORS["problems"]) == [
        "protocols",
        "lr_sensitivity",
        "time_to_target",
        "performance_profile",
    ]
    assert figures_for(["activation", "optimizer"]) == figures_for(FACTORS["optimization"])
    assert figures_for(["activation", "optimizer", "depth"])[-1] == "activation_gap_vs_depth"
    assert figures_for(["optimizer"]) == ["protocols", "lr_sensitivity", "time_to_target"]
    assert figures_for([]) == []  # no cells to compare


def test_every_catalogued_figure_is_drawn():
    assert set(plots.DRAW) == set(FIGURES)
    for name, spec in FIGURES.items():
        assert spec.title and spec.caption.endswith("."), name
        assert spec.inputs and set(spec.inputs) <= set(plots.TABLES), name
        # Captions are also reStructuredText in Snakemake's report: no markup.
        assert not any(c in spec.caption for c in "|*`_"), (name, spec.caption)


def test_figures_module_has_no_plotting_imports(root):
    text = (root / "src" / "optreg" / "report" / "figures.py").read_text()
    assert "matplotlib" not in text and "seaborn" not in text and "import pandas" not in text


# ---------------------------------------------------------------- every figure

CASES = [(study, name) for study, factors in FACTORS.items() for name in figures_for(factors)]


@pytest.mark.parametrize(("study", "name"), CASES)
def test_every_figure_renders_and_saves(studies, frames, tmp_path, study, name):
    factors = FACTORS[study]
    declared = {k: frames[study][k] for k in FIGURES[name].inputs}  # only what it declares
    fig = plots.make_figure(name, declared, factors)
    width, height = fig.get_size_inches()
    rows = max(ax.get_subplotspec().get_gridspec().nrows for ax in _panels(fig))
    assert width == pytest.approx(plots.PAGE_WIDTH)
    assert height <= plots.MAX_ROW_HEIGHT * rows + 1e-9
    assert fig.get_suptitle()
    for ax in _panels(fig):
        assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title()
    plt.close(fig)

    # The workflow's entry point, given only the paths of the tables the figure reads.
    png, pdf = tmp_path / "out" / f"{name}.png", tmp_path / "out" / f"{name}.pdf"
    paths = {k: studies[study][k] for k in FIGURES[name].inputs}
    paths["code"] = tmp_path / "not-a-table"  # the workflow passes other inputs too
    before = plt.get_fignums()
    plots.plot_figure(name, paths, factors, png, pdf)
    assert plt.get_fignums() == before  # closed
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in png.parent.iterdir()) == sorted([png.name, pdf.name])


# ---------------------------------------------------------------- what figures show


def test_heatmap_annotations_hold_the_summary(frames):
    summary = frames["optimization"]["summary"]
    fig = plots.make_figure("test_accuracy_heatmap", {"summary": summary}, FACTORS["optimization"])
    titles = [ax.get_title() for ax in _panels(fig)]
    per_panel = [[t.get_text() for t in ax.texts] for ax in _panels(fig)]
    plt.close(fig)
    assert titles == [plots.PROTOCOL_LABELS["tuned"], plots.PROTOCOL_LABELS["oneshot"]]
    for protocol, texts in zip(plots.PROTOCOLS, per_panel, strict=True):
        rows = summary[summary["protocol"] == protocol]
        assert len(texts) == len(rows) == 4
        for _, row in rows.iterrows():
            half = (row["test_accuracy_ci_high"] - row["test_accuracy_ci_low"]) / 2
            edge = "*" if protocol == "tuned" and row["lr_on_grid_edge"] else ""
            expected = f"{row['test_accuracy_mean']:.3f}\n±{half:.3f}\nlr {row['lr']:g}{edge}"
            assert expected in texts, (expected, texts)


def test_heatmap_marks_a_cell_where_every_seed_diverged(frames):
    summary = frames["optimization"]["summary"].copy()
    lost = (summary["protocol"] == "oneshot") & (summary["optimizer"] == "momentum")
    lost &= summary["activation"] == "sigmoid"
    metrics = [c for c in summary if c.startswith("test_accuracy_")]
    summary.loc[lost, metrics] = math.nan
    summary.loc[lost, "n_diverged"] = summary.loc[lost, "seeds"]
    fig = plots.make_figure("test_accuracy_heatmap", {"summary": summary}, FACTORS["optimization"])
    per_panel = [[t.get_text() for t in ax.texts] for ax in _panels(fig)]
    plt.close(fig)
    assert [sum("diverged" in t for t in texts) for texts in per_panel] == [0, 1]
    assert len(per_panel[1]) == 4  # the other three cells keep their values


def test_heatmap_shares_one_colour_scale(frames):
    summary = frames["optimization"]["summary"]
    fig = plots.make_figure("test_accuracy_heatmap", {"summary": summary}, FACTORS["optimization"])
    limits = {ax.collections[0].get_clim() for ax in _panels(fig) if ax.collections}
    plt.close(fig)
    (low, high) = limits.pop()
    assert not limits
    assert low == pytest.approx(summary["test_accuracy_mean"].min())
    assert high == pytest.approx(summary["test_accuracy_mean"].max())


def test_an_extra_factor_becomes_extra_panels(frames):
    summary = frames["optimization"]["summary"]
    two = pd.concat([summary.assign(epochs=3), summary.assign(epochs=4)])
    fig = plots.make_figure(
        "test_accuracy_heatmap", {"summary": two}, [*FACTORS["optimization"], "epochs"]
    )
    titles = [ax.get_title() for ax in _panels(fig)]
    plt.close(fig)
    assert len(titles) == 4 and sum("epochs 4" in t for t in titles) == 2


def _tangled(fig) -> list[str]:
    """The panels (by title) whose x tick labels run into each other, as laid out: level
    labels whose boxes overlap, or slanted ones closer (across their slant) than a line."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    tangled = []
    for ax in _panels(fig):
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        angle = math.radians(labels[0].get_rotation()) if labels else 0.0
        if angle == 0.0:
            hit = any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
        else:
            at = [t.get_loc() for t in ax.xaxis.get_major_ticks() if t.label1.get_text()]
            xs = sorted(ax.transData.transform((x, 0))[0] for x in at)
            line = labels[0].get_fontsize() * fig.dpi / 72
            hit = min(np.diff(xs)) * math.sin(angle) < line
        if hit:
            tangled.append(ax.get_title())
    return tangled


def test_heatmap_labels_of_many_optimizers_do_not_overlap(frames):
    """A study with optimizers of one's own beside the built-in four (docs/extending.md)."""
    summary = frames["optimization"]["summary"]
    names = ["sgd", "momentum", "rmsprop", "adam", "adabelief"]
    rows = summary[summary["optimizer"] == "momentum"]
    many = pd.concat([rows.assign(optimizer=n, combination=rows["combination"] + n) for n in names])
    fig = plots.make_figure("test_accuracy_heatmap", {"summary": many}, FACTORS["optimization"])
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in _panels(fig)]
    tangled = _tangled(fig)
    plt.close(fig)
    assert labels == [names, names] and tangled == []
    fig = plots.make_figure("test_accuracy_heatmap", {"summary": summary}, FACTORS["optimization"])
    slanted = {t.get_rotation() for ax in _panels(fig) for t in ax.get_xticklabels()}
    plt.close(fig)
    assert slanted == {0.0}  # labels with room stay level


def test_heatmap_texts_of_many_optimizers_fit_their_cells(frames):
    """Six optimizers, one at a default rate of 0.0001: the longest text, at the PNG's
    resolution, leaves room in its cell; with room to spare the texts keep their size."""
    summary = frames["optimization"]["summary"]
    names = ["sgd", "momentum", "rmsprop", "adam", "adabelief", "signum"]
    rows = summary[summary["optimizer"] == "momentum"]
    many = pd.concat([rows.assign(optimizer=n, combination=rows["combination"] + n) for n in names])
    many.loc[(many["optimizer"] == "signum") & (many["protocol"] == "oneshot"), "lr"] = 0.0001
    for table, columns in ((many, len(names)), (summary, 2)):
        fig = plots.make_figure(
            "test_accuracy_heatmap", {"summary": table}, ["optimizer", "activation"]
        )
        fig.set_dpi(plots.PNG_DPI)
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        widest = max(
            t.get_window_extent(renderer).width / (ax.get_window_extent(renderer).width / columns)
            for ax in _panels(fig)
            for t in ax.texts
        )
        sizes = {t.get_fontsize() for ax in _panels(fig) for t in ax.texts}
        plt.close(fig)
        assert widest < 0.9 and len(sizes) == 1
        if columns == 2:
            assert sizes == {7.5}


def test_lr_sensitivity_labels_of_a_wide_grid_do_not_overlap(frames):
    """The grid of examples/lion.yaml, 0.0001 to 3, in three panels side by side."""
    tuning = frames["optimization"]["tuning"]
    tanh = tuning[tuning["activation"] == "sigmoid"].assign(activation="tanh")
    tuning = pd.concat([tuning, tanh])
    spread = {0.01: [0.0001, 0.0003, 0.001, 0.003], 0.1: [0.03, 0.3, 1.0, 3.0]}
    wide = pd.concat(
        [tuning]
        + [
            tuning[tuning["lr"] == lr].assign(lr=other, selected=False)
            for lr, others in spread.items()
            for other in others
        ]
    )
    fig = plots.make_figure("lr_sensitivity", {"tuning": wide}, FACTORS["optimization"])
    tangled = _tangled(fig)
    plt.close(fig)
    assert tangled == []


def test_protocols_has_both_protocols_of_every_cell_sorted_by_tuned(frames):
    summary = frames["regularization"]["summary"]
    fig = plots.make_figure("protocols", {"summary": summary}, FACTORS["regularization"])
    (ax,) = _panels(fig)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    tuned = summary[summary["protocol"] == "tuned"]
    assert len(labels) == len(tuned) == 5  # none, l1 and l1_prox at two strengths
    assert "none" in labels and "l1_prox 0.01" in labels
    by_label = {plots._cell_label(r, FACTORS["regularization"]): r for _, r in tuned.iterrows()}
    means = [by_label[label]["test_accuracy_mean"] for label in labels]
    assert means == sorted(means, reverse=True)


def test_lr_sensitivity_marks_each_selected_rate(frames):
    tuning = frames["optimization"]["tuning"]
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, FACTORS["optimization"])
    stars = [
        (x, y)
        for ax in _panels(fig)
        for line in ax.get_lines()
        if line.get_marker() == "*"
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
    ]
    titles = [ax.get_title() for ax in _panels(fig)]
    plt.close(fig)
    assert titles == ["activation relu", "activation sigmoid"]
    chosen = tuning[tuning["selected"]]
    assert len(chosen) == tuning["combination"].nunique() == len(stars)
    assert sorted(x for x, _ in stars) == sorted(chosen["lr"])
    assert all(y < 0 for _, y in stars)  # in the rows below the curves, off the data


def test_lr_sensitivity_repeats_the_unpenalized_cell_in_every_strength_panel(frames):
    tuning = frames["regularization"]["tuning"]
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, FACTORS["regularization"])
    titles = [ax.get_title() for ax in _panels(fig)]
    dashed = [sum(line.get_linestyle() == "--" for line in ax.get_lines()) for ax in _panels(fig)]
    plt.close(fig)
    assert titles == ["penalty strength 0.0001", "penalty strength 0.01"]
    assert dashed == [1, 1]


def test_lr_sensitivity_marks_diverged_rates(frames):
    tuning = frames["optimization"]["tuning"].copy()
    tuning.loc[tuning.index[0], "n_diverged"] = 1
    fig = plots.make_figure("lr_sensitivity", {"tuning": tuning}, FACTORS["optimization"])
    crosses = sum(line.get_marker() == "x" for ax in fig.axes for line in ax.get_lines())
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert crosses == 1 and any("diverged" in t for t in legend)


def test_learning_curves_draw_the_tuned_evaluation_runs(frames):
    history = frames["optimization"]["history"]
    fig = plots.make_figure("learning_curves", {"history": history}, FACTORS["optimization"])
    panels = _panels(fig)
    titles = [ax.get_title() for ax in panels]
    first = panels[0].get_lines()[0]
    plt.close(fig)
    assert titles == ["activation relu", "activation sigmoid"]
    runs = history[
        (history["phase"] == "eval")
        & (history["protocol"] == "tuned")
        & (history["optimizer"] == "momentum")
        & (history["activation"] == "relu")
    ]
    expected = runs.groupby("epoch")["val_accuracy"].mean()
    np.testing.assert_allclose(first.get_ydata(), expected.to_numpy())


def test_sparsity_shows_exact_and_near_zeros(frames):
    summary = frames["regularization"]["summary"]
    fig = plots.make_figure("sparsity_vs_strength", {"summary": summary}, FACTORS["regularization"])
    panels = _panels(fig)
    titles = [ax.get_title() for ax in panels]
    exact = {tuple(line.get_ydata()) for line in panels[0].get_lines() if len(line.get_ydata()) > 1}
    plt.close(fig)
    assert titles == ["weights exactly zero", "weights magnitude below 0.001"]
    tuned = summary[summary["protocol"] == "tuned"].sort_values("strength")
    prox = tuple(tuned.loc[tuned["penalty"] == "l1_prox", "zero_fraction_mean"])
    assert prox in exact
    assert all(low >= -0.05 and high <= 1.05 for low, high in (ax.get_ylim() for ax in panels))


def test_time_to_target_labels_seeds_and_unreached_cells(frames):
    summary = frames["problems"]["summary"].copy()
    tuned = summary["protocol"] == "tuned"
    slow = tuned & (summary["problem"] == "digits_mlp") & (summary["optimizer"] == "sgd")
    summary.loc[slow, "reached_target"] = 0
    summary.loc[slow, [c for c in summary if c.startswith("epochs_to_target_")]] = math.nan
    fig = plots.make_figure("time_to_target", {"summary": summary}, FACTORS["problems"])
    texts = _texts(fig)
    assert "target validation accuracy" in fig.get_suptitle()
    plt.close(fig)
    assert sum(t.startswith("not reached") for t in texts) == 1
    for _, row in summary[tuned & ~slow].iterrows():
        assert f"{row['reached_target']}/{row['seeds']} seeds" in texts


def test_performance_profile_curves_end_at_one(frames):
    summary = frames["problems"]["summary"]
    fig = plots.make_figure("performance_profile", {"summary": summary}, FACTORS["problems"])
    (ax,) = _panels(fig)
    curves = [line.get_ydata() for line in ax.get_lines()]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert len(curves) == 2
    assert all(c[-1] == 1.0 and c[0] >= 0 and np.all(np.diff(c) >= 0) for c in curves)
    # Every problem has a best optimizer, within 0 of itself: at τ = 0 the shares add to >= 1.
    assert sum(c[0] for c in curves) >= 1.0
    tuned = summary[summary["protocol"] == "tuned"]
    ranks = (
        tuned.groupby("problem")["test_accuracy_mean"]
        .rank(ascending=False)
        .groupby(tuned["optimizer"])
        .mean()
    )
    for opt, rank in ranks.items():
        assert f"{opt} (mean rank {rank:.2f})" in legend


def test_performance_profile_counts_a_diverged_cell_as_never_within(frames):
    tuned = frames["problems"]["summary"]
    tuned = tuned[tuned["protocol"] == "tuned"].copy()
    lost = (tuned["problem"] == "cancer_mlp") & (tuned["optimizer"] == "adam")
    tuned.loc[lost, "test_accuracy_mean"] = math.nan
    taus, shares, ranks = plots.profile_curves(tuned, ["sgd", "adam"])
    assert shares["adam"][-1] == 0.5 and shares["sgd"][-1] == 1.0
    assert ranks["adam"] >= 1.5


# ---------------------------------------------------------------- the API


def test_make_figure_rejects_bad_requests(frames):
    factors, summary = FACTORS["regularization"], frames["regularization"]["summary"]
    with pytest.raises(KeyError, match="unknown figure"):
        plots.make_figure("nope", {"summary": summary}, factors)
    with pytest.raises(ValueError, match="needs factors"):
        plots.make_figure("test_accuracy_heatmap", {"summary": summary}, factors)
    with pytest.raises(ValueError, match=r"at least 1 factor\(s\)"):
        plots.make_figure("protocols", {"summary": summary}, [])
    with pytest.raises(KeyError, match="needs tables"):
        plots.make_figure("accuracy_vs_strength", {"tuning": summary}, factors)
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="no rows for protocol"):
        plots.make_figure("accuracy_vs_strength", {"summary": summary.iloc[:0]}, factors)
    assert plt.get_fignums() == before  # no half-drawn figure left open


def test_saved_files_are_reproducible(studies, tmp_path):
    digests = []
    for i in range(2):
        png, pdf = tmp_path / f"{i}.png", tmp_path / f"{i}.pdf"
        plots.plot_figure(
            "accuracy_vs_strength", studies["regularization"], FACTORS["regularization"], png, pdf
        )
        digests.append((png.read_bytes(), pdf.read_bytes()))
    assert digests[0] == digests[1]


def test_activation_gap_is_the_paired_difference_of_the_tuned_runs(frames):
    from optreg.analysis.stats import pairwise_comparisons

    # The optimization study's runs at two depths: depth 2 the same runs, sigmoid 0.2 lower.
    runs = frames["optimization"]["runs"]
    deeper = runs.assign(depth=2, combination=runs["combination"] + "_depth-2")
    deeper.loc[deeper["activation"] == "sigmoid", "test_accuracy"] -= 0.2
    runs = pd.concat([runs.assign(depth=1), deeper], ignore_index=True)
    evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    pairs = pairwise_comparisons(evals).assign(protocol="tuned")
    factors = ["optimizer", "activation", "depth"]
    gaps = plots.activation_gaps(runs, pairs, factors)
    assert len(gaps) == 2 * 2  # optimizers x depths, sigmoid against relu
    for row in gaps.to_dict("records"):
        cell = evals[(evals["optimizer"] == row["optimizer"]) & (evals["depth"] == row["depth"])]
        relu = cell[cell["activation"] == "relu"].set_index("seed")["test_accuracy"]
        other = cell[cell["activation"] == "sigmoid"].set_index("seed")["test_accuracy"]
        assert row["gap"] == pytest.approx((relu - other).mean())
        assert row["ci_low"] <= row["gap"] <= row["ci_high"]
        assert row["significant"] == (row["p_holm"] < 0.05)
    shallow, deep = (gaps[gaps["depth"] == d].set_index("optimizer")["gap"] for d in (1, 2))
    assert (deep - shallow).to_numpy() == pytest.approx([0.2, 0.2])
    fig = plots.make_figure("activation_gap_vs_depth", {"runs": runs, "pairs": pairs}, factors)
    (panel,) = _panels(fig)
    assert panel.get_title() == "ReLU − sigmoid" and list(panel.get_xticks()) == [1, 2]
    plt.close(fig)
