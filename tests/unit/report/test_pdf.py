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
