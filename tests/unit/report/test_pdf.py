"""The report's data: the versions line."""

from __future__ import annotations

import importlib.metadata

import pandas as pd

from optreg.report.pdf import versions


def test_the_versions_name_the_packages_the_runs_recorded():
    runs = pd.DataFrame(
        {
            "packages": [
                "pytorch_optimizer==4.1.0;torch==0.0.1",
                "",
                "schedulefree==1.4.1",
                "pytorch_optimizer==4.2.0",
                None,
            ]
        }
    )
    out = versions([runs, pd.DataFrame({"lr": [0.1]})])
    assert out["pytorch_optimizer"] == "4.1.0 / 4.2.0"  # a partial rerun after an upgrade
    assert out["schedulefree"] == "1.4.1"
    assert out["torch"] == importlib.metadata.version("torch")  # the report's own, listed first


def test_the_method_text_says_how_each_cell_trained_and_each_studys_batch_and_epochs():
    from optreg.report.pdf import execution

    def cell(name, optimizer, stacked, n=4, batch=64, epochs=10):
        return [
            {"combination": name, "optimizer": optimizer, "stacked_runs": stacked,
             "batch_size": batch, "epochs": epochs}
            for _ in range(n)
        ]  # fmt: skip

    first = pd.DataFrame(cell("a", "adam", 4) + cell("b", "sam", 1) + cell("c", "lbfgs", 1))
    out = execution({"first": first})
    assert (out["cells"], out["stacked"], out["single"]) == (3, 1, 2)
    assert out["single_optimizers"] == ["lbfgs", "sam"]
    assert (out["batch_size"], out["epochs"]) == ("64", "10")
    second = pd.DataFrame(cell("d", "adam", 6, batch=16, epochs=20))
    out = execution({"first": first, "second": second})
    assert out["batch_size"] == "64 in first; 16 in second"
    assert out["epochs"] == "10 in first; 20 in second"
    # A cell of one run is no evidence of training alone: counted as stacked.
    assert execution({"x": pd.DataFrame(cell("e", "adam", 1, n=1))})["single"] == 0
