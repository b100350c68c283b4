"""The import graph behind each rule's code inputs."""

from __future__ import annotations

from pathlib import Path

from optreg.deps import source_dependencies


def names(root: Path, script: str) -> set[str]:
    deps = source_dependencies(str(root / "scripts" / script), str(root / "src"))
    package = root / "src" / "optreg"
    return {
        Path(p).relative_to(package).as_posix() if Path(p).is_relative_to(package) else Path(p).name
        for p in deps
    }


def test_train_depends_on_the_training_code_and_metrics_schema(root):
    deps = names(root, "train.py")
    assert {
        "training/loop.py",
        "training/job.py",
        "training/models.py",
        "training/optimizers.py",
        "data/prepared.py",
        "records.py",
        "__init__.py",
        "training/__init__.py",
    } <= deps
    assert "metrics.schema.json" in deps
    assert not deps & {"report/plots.py", "analysis/tables.py", "report/pdf.py"}


def test_plots_do_not_depend_on_the_training_code(root):
    deps = names(root, "plot.py")
    drawing = {
        "report/plots.py",
        "report/figures/__init__.py",
        "report/figures/catalogue.py",
        "report/figures/style.py",
        "report/figures/heatmap.py",
        "analysis/gaps.py",
        "analysis/tables.py",
        "analysis/stats.py",
    }
    assert drawing <= deps
    assert not deps & {"training/loop.py", "training/models.py", "training/optimizers.py"}


def test_relative_and_lazy_imports_are_followed(tmp_path):
    pkg = tmp_path / "src" / "optreg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("import json\n")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from optreg.a import f\n")
    deps = {Path(p).name for p in source_dependencies(str(script), str(tmp_path / "src"))}
    assert deps == {"__init__.py", "a.py", "b.py", "c.py"}
