"""The figure registry: what each study draws, every figure's spec, and a figure of one's own."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
from conftest import STUDY_FACTORS

from optreg.analysis.tables import read_table
from optreg.report import plots
from optreg.report.figures import FIGURES, TABLES, figure, figures_for
from optreg.report.figures.style import PAGE_WIDTH, PROTOCOLS


def test_figures_for_each_study():
    assert figures_for(STUDY_FACTORS["optimization"]) == [
        "test_accuracy_heatmap",
        "protocols",
        "lr_sensitivity",
        "learning_curves",
        "time_to_target",
    ]
    assert figures_for(STUDY_FACTORS["regularization"]) == [
        "protocols",
        "lr_sensitivity",
        "accuracy_vs_strength",
        "sparsity_vs_strength",
        "time_to_target",
    ]
    assert figures_for(STUDY_FACTORS["problems"]) == [
        "protocols",
        "lr_sensitivity",
        "time_to_target",
        "performance_profile",
    ]
    assert figures_for(["activation", "optimizer"]) == figures_for(STUDY_FACTORS["optimization"])
    assert figures_for(["activation", "optimizer", "depth"])[-1] == "activation_gap_vs_depth"
    assert figures_for(["optimizer"]) == ["protocols", "lr_sensitivity", "time_to_target"]
    assert figures_for([]) == []  # no cells to compare


def test_a_study_at_its_default_rates_alone_draws_no_figure_of_the_rate():
    """A study whose every cell trains at its optimizer's default rate alone (a one-rate
    grid) has no grid to draw and no tuned rate to set against the default; a one-rate grid
    off the default still has the comparison."""
    factors = STUDY_FACTORS["regularization"]
    assert figures_for(factors, traits=set()) == [
        "accuracy_vs_strength",
        "sparsity_vs_strength",
        "time_to_target",
    ]
    assert figures_for(factors, traits={"choice"})[0] == "protocols"
    assert "lr_sensitivity" not in figures_for(factors, traits={"choice"})
    assert figures_for(factors, traits={"grid", "choice"}) == figures_for(factors)
    with pytest.raises(ValueError, match="needs"):
        figure("some_figure", inputs=("summary",), title="t", caption="c.", needs=("rates",))


def test_every_catalogued_figure_is_drawn():
    for name, spec in FIGURES.items():
        # Entered by its own drawing function's decorator, in a module of the registry.
        assert spec.name == name and callable(spec.draw), name
        assert spec.draw.__module__.startswith("optreg.report.figures."), name
        assert spec.title and spec.caption.endswith("."), name
        assert spec.inputs and set(spec.inputs) <= set(TABLES), name
        # Captions are also reStructuredText in Snakemake's report: no markup.
        assert not any(c in spec.caption for c in "|*`_"), (name, spec.caption)


def test_figures_module_has_no_plotting_imports(root):
    """The workflow plans figures when it parses: the registry imports no plotting library
    (nor pandas, numpy or torch), and its figures import theirs only when they draw."""
    for module in ("__init__.py", "catalogue.py"):
        text = (root / "src" / "optreg" / "report" / "figures" / module).read_text()
        assert "matplotlib" not in text and "seaborn" not in text and "import pandas" not in text
    heavy = ("matplotlib", "seaborn", "pandas", "numpy", "torch")
    code = (
        "import sys, optreg.report.figures as f; assert f.FIGURES; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert proc.stdout.strip() == "[]"


def test_a_figure_enters_the_catalogue_once_and_reads_known_tables():
    with pytest.raises(ValueError, match="already in the catalogue"):
        figure("protocols", inputs=("summary",), title="t", caption="c.")(lambda *a: None)
    with pytest.raises(ValueError, match="reads tables"):
        figure("no_such_table", inputs=("cells",), title="t", caption="c.")
    assert "no_such_table" not in FIGURES


@pytest.fixture
def own_figure():
    """A figure defined in one place, as docs/extending.md describes: its spec, caption and
    drawing function, entered into FIGURES as the built-in ones are (and taken out after)."""

    @figure(
        "cells_per_protocol",
        requires=("optimizer",),
        inputs=("summary",),
        title="Cells of the study under each protocol",
        caption="The number of cells of the study evaluated under each protocol.",
    )
    def cells_per_protocol(tables, factors, orders, spec):
        summary = tables["summary"]
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.0), layout="constrained")
        ax.bar(PROTOCOLS, [int((summary["protocol"] == p).sum()) for p in PROTOCOLS])
        ax.set_ylabel("cells")
        fig.suptitle(spec.title)
        return fig

    yield FIGURES["cells_per_protocol"]
    del FIGURES["cells_per_protocol"]


def test_a_figure_defined_in_one_place_is_planned_and_drawn(own_figure, study_tables, tmp_path):
    factors = STUDY_FACTORS["optimization"]
    assert figures_for(factors)[-1] == "cells_per_protocol"
    assert "cells_per_protocol" not in figures_for(STUDY_FACTORS["regularization"])
    summary = read_table(study_tables["optimization"]["summary"])
    fig = plots.make_figure("cells_per_protocol", {"summary": summary}, factors)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert fig.get_suptitle() == own_figure.title
    plt.close(fig)
    assert heights == [(summary["protocol"] == p).sum() for p in PROTOCOLS] == [4, 4]
    png, pdf = tmp_path / "own.png", tmp_path / "own.pdf"
    plots.plot_figure("cells_per_protocol", study_tables["optimization"], factors, png, pdf)
    assert png.read_bytes().startswith(b"\x89PNG") and pdf.read_bytes().startswith(b"%PDF")
