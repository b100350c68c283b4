"""Drawing a figure of the registry and saving it, from real tables of a tiny tuned study."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from conftest import STUDY_FACTORS, figure_panels

from optreg.report import plots
from optreg.report.figures import FIGURES, figures_for, style

CASES = [(study, name) for study, factors in STUDY_FACTORS.items() for name in figures_for(factors)]


@pytest.mark.parametrize(("study", "name"), CASES)
def test_every_figure_renders_and_saves(study_tables, study_frames, tmp_path, study, name):
    factors = STUDY_FACTORS[study]
    declared = {k: study_frames[study][k] for k in FIGURES[name].inputs}  # only what it declares
    fig = plots.make_figure(name, declared, factors)
    width, height = fig.get_size_inches()
    rows = max(ax.get_subplotspec().get_gridspec().nrows for ax in figure_panels(fig))
    assert width == pytest.approx(style.PAGE_WIDTH)
    assert height <= style.MAX_ROW_HEIGHT * rows + 1e-9
    assert fig.get_suptitle()
    for ax in figure_panels(fig):
        assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title()
    plt.close(fig)

    # The workflow's entry point, given only the paths of the tables the figure reads.
    png, pdf = tmp_path / "out" / f"{name}.png", tmp_path / "out" / f"{name}.pdf"
    paths = {k: study_tables[study][k] for k in FIGURES[name].inputs}
    paths["code"] = tmp_path / "not-a-table"  # the workflow passes other inputs too
    before = plt.get_fignums()
    plots.plot_figure(name, paths, factors, png, pdf)
    assert plt.get_fignums() == before  # closed
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in png.parent.iterdir()) == sorted([png.name, pdf.name])


def test_make_figure_rejects_bad_requests(study_frames):
    factors, summary = STUDY_FACTORS["regularization"], study_frames["regularization"]["summary"]
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


def test_saved_files_are_reproducible(study_tables, tmp_path):
    digests = []
    for i in range(2):
        png, pdf = tmp_path / f"{i}.png", tmp_path / f"{i}.pdf"
        plots.plot_figure(
            "accuracy_vs_strength",
            study_tables["regularization"],
            STUDY_FACTORS["regularization"],
            png,
            pdf,
        )
        digests.append((png.read_bytes(), pdf.read_bytes()))
    assert digests[0] == digests[1]
