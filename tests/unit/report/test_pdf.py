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


def _evals(rates: dict) -> pd.DataFrame:
    """Evaluation rows of one study: {(cell, protocol): rate}."""
    return pd.DataFrame(
        [
            {"phase": "eval", "combination": c, "protocol": p, "lr": lr, "seed": 0}
            for (c, p), lr in rates.items()
        ]
    )


def test_a_study_tuned_to_its_default_rates_shows_its_verdicts_once():
    from optreg.report.pdf import default_rate_studies, findings_rows

    runs = {
        "reg": _evals({("a", "tuned"): 0.001, ("a", "oneshot"): 0.001}),
        "opt": _evals({("a", "tuned"): 0.01, ("a", "oneshot"): 0.001}),
    }
    assert default_rate_studies(runs) == {"reg"}
    findings = pd.DataFrame(
        [
            {"study": s, "id": s, "text": s, "at": "", "protocol": p, "verdict": "supported"}
            for s in ("reg", "opt")
            for p in ("tuned", "oneshot", "retuned")
        ]
    ).assign(note="", evidence="", diff=None, p_holm=None)
    shown = [
        (r["text"], r["protocol"]) for r in findings_rows(findings, ["reg", "opt"], 0.05, {"reg"})
    ]
    assert shown == [("reg", "same"), ("opt", "tuned"), ("opt", "oneshot")]


def test_the_tuning_section_counts_fragile_verdicts_and_changed_rates():
    from optreg.report.pdf import tuning_section

    verdicts = {"tuned": "supported", "oneshot": "contradicted", "small": "supported"}
    findings = pd.DataFrame(
        [
            {"study": "opt", "id": c, "text": c, "at": "", "protocol": p, "verdict": v}
            for c, retuned in (("stable", "supported"), ("flips", "undecided"))
            for p, v in {**verdicts, "retuned": retuned}.items()
        ]
    )
    runs = {
        "opt": _evals(
            {
                ("a", "tuned"): 0.01,
                ("a", "retuned"): 0.03,
                ("b", "tuned"): 0.1,
                ("b", "retuned"): 0.1,
            }
        )
    }
    section = tuning_section(findings, runs)
    assert [(c["text"], c["fragile"]) for c in section["claims"]] == [
        ("stable", "no"),
        ("flips", "yes"),
    ]
    assert (section["fragile"], section["judged"]) == (1, 2)
    assert section["claims"][1]["verdicts"]["oneshot"] == "contradicted"
    (rates,) = section["rates"]
    assert (rates["cells"], rates["same"], rates["changed"]) == (2, 1, ["a (0.01 → 0.03)"])


def test_rows_of_a_table_without_protocols_are_shown_as_they_are():
    from optreg.report.pdf import _shown

    # Read from a CSV whose protocol column is empty: numeric, all missing.
    frame = pd.DataFrame({"study": ["reg", "opt"], "protocol": [float("nan")] * 2, "x": [1, 2]})
    shown = _shown(frame, {"reg"})
    assert list(shown["protocol"]) == ["", ""] and list(shown["x"]) == [1, 2]
