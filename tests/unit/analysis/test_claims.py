"""Claims as data: loading config/claims.yaml and each kind's verdicts on synthetic studies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from optreg.analysis.claims import (
    FINDINGS_COLUMNS,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    conclusion,
    evaluate_claims,
    load_claims,
)
from optreg.analysis.stats import mean_ci, pairwise_comparisons

ALPHA = 0.05
SEEDS = 10
_rng = np.random.default_rng(0)
# Seeds shift every cell alike (pairing removes this); each cell adds its own noise, centred so
# that a cell's mean over seeds is exactly as specified and the ranking is the intended one.
SEED_EFFECT = _rng.normal(0, 0.01, SEEDS)
JITTER = _rng.normal(0, 0.003, (12, SEEDS))
JITTER -= JITTER.mean(axis=1, keepdims=True)

OPT = [("relu", "adam"), ("relu", "rmsprop"), ("relu", "momentum")]
OPT += [("sigmoid", "adam"), ("sigmoid", "rmsprop"), ("sigmoid", "momentum")]
STRENGTHS = [1e-05, 0.0001, 0.001, 0.01]


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _study(cells_by_protocol: dict[str, list[tuple[dict, float, float]]]):
    """Summary and pairs tables from (factors, test mean, val mean) per cell and protocol."""
    summary, pairs = [], []
    for protocol, cells in cells_by_protocol.items():
        runs = []
        for k, (factors, test, val) in enumerate(cells):
            combination = "_".join(f"{key}-{_label(value)}" for key, value in factors.items())
            values = test + SEED_EFFECT + JITTER[k]
            runs += [
                {"combination": combination, "seed": s, "test_accuracy": v}
                for s, v in enumerate(values)
            ]
            ci = mean_ci(values)
            summary.append(
                {
                    "combination": combination,
                    **factors,
                    "protocol": protocol,
                    "test_accuracy_mean": ci["mean"],
                    "test_accuracy_ci_low": ci["ci_low"],
                    "test_accuracy_ci_high": ci["ci_high"],
                    "val_accuracy_mean": val,
                    "seeds": SEEDS,
                    "n_diverged": 0,
                }
            )
        table = pairwise_comparisons(pd.DataFrame(runs), alpha=ALPHA)
        table.insert(0, "protocol", protocol)
        pairs.append(table)
    return pd.DataFrame(summary), pd.concat(pairs, ignore_index=True)


def _optimization(means: dict[tuple[str, str], float], protocol: str = "tuned"):
    cells = [({"activation": a, "optimizer": o}, means.get((a, o), 0.92), 0.0) for a, o in OPT]
    return _study({protocol: cells})


def _regularization(none: float, l1: list[float], l2: list[float], l2_val=None, protocol="tuned"):
    l2_val = l2_val or [0.9] * len(STRENGTHS)
    cells = [({"penalty": "none", "strength": 0.0}, none, 0.9)]
    cells += [({"penalty": "l1", "strength": s}, t, 0.9) for s, t in zip(STRENGTHS, l1, strict=1)]
    cells += [
        ({"penalty": "l2", "strength": s}, t, v)
        for s, t, v in zip(STRENGTHS, l2, l2_val, strict=True)
    ]
    return _study({protocol: cells})


def _claim(kind, study="optimization", **keys):
    return {"id": f"c_{kind}", "text": f"a {kind} claim", "study": study, "kind": kind, **keys}


def _one(claim, summary, pairs, study=None):
    study = study or claim["study"]
    out = evaluate_claims([claim], ALPHA, {study: summary}, {study: pairs})
    assert list(out.columns) == FINDINGS_COLUMNS and len(out) == 1
    return out.iloc[0]


def _pair(pairs, summary, x: dict, y: dict):
    """The oriented (x − y) diff and p_holm between the cells matching x and y."""
    ids = []
    for spec in (x, y):
        mask = np.ones(len(summary), dtype=bool)
        for key, value in spec.items():
            mask &= (summary[key] == value).to_numpy()
        ids.append(summary.loc[mask, "combination"].item())
    row = pairs[(pairs["cell_a"] == ids[0]) & (pairs["cell_b"] == ids[1])]
    sign = 1
    if row.empty:
        row, sign = pairs[(pairs["cell_a"] == ids[1]) & (pairs["cell_b"] == ids[0])], -1
    return sign * row["diff"].item(), row["p_holm"].item()


RELU_ADAM = {"activation": "relu", "optimizer": "adam"}
RELU_RMSPROP = {"activation": "relu", "optimizer": "rmsprop"}
SIG_MOM = {"activation": "sigmoid", "optimizer": "momentum"}
RELU_MOM = {"activation": "relu", "optimizer": "momentum"}


# --- best ----------------------------------------------------------------------------------


def test_best_supported_when_first_and_not_supported_when_beaten():
    summary, pairs = _optimization({("relu", "adam"): 0.97, ("relu", "rmsprop"): 0.95})
    row = _one(_claim("best", cell=RELU_ADAM), summary, pairs)
    assert row["verdict"] == SUPPORTED
    assert "relu+adam" in row["evidence"] and "ranks 1 of 6" in row["evidence"]

    row = _one(_claim("best", cell=RELU_RMSPROP), summary, pairs)
    assert row["verdict"] == NOT_SUPPORTED
    assert "significantly below 1 cell(s): relu+adam" in row["evidence"]
    assert "p_holm=" in row["evidence"] and "best: relu+adam" in row["note"]


def test_best_inconclusive_when_second_but_within_noise():
    summary, pairs = _optimization({("relu", "adam"): 0.95, ("relu", "rmsprop"): 0.951})
    # The fixture's premise: rmsprop is ahead on the mean, not significantly.
    means = summary.set_index("optimizer").query("activation == 'relu'")["test_accuracy_mean"]
    assert means["rmsprop"] > means["adam"]
    assert _pair(pairs, summary, RELU_ADAM, RELU_RMSPROP)[1] >= ALPHA

    row = _one(_claim("best", cell=RELU_ADAM), summary, pairs)
    assert row["verdict"] == INCONCLUSIVE
    assert "ranks 2 of 6" in row["evidence"] and "first: relu+rmsprop" in row["evidence"]
    assert "1 other cell(s) within noise" in row["evidence"]
    assert _one(_claim("best", cell=RELU_RMSPROP), summary, pairs)["verdict"] == SUPPORTED


# --- less ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigmoid", "verdict", "words"),
    [
        (0.90, SUPPORTED, "significantly lower"),
        (0.97, NOT_SUPPORTED, "significantly higher"),
        (0.95, INCONCLUSIVE, "within noise"),
    ],
)
def test_less(sigmoid, verdict, words):
    summary, pairs = _optimization({("relu", "momentum"): 0.95, ("sigmoid", "momentum"): sigmoid})
    row = _one(_claim("less", cell=SIG_MOM, than=RELU_MOM), summary, pairs)
    assert row["verdict"] == verdict
    assert row["evidence"].startswith("sigmoid+momentum ")
    assert words in row["evidence"] and "relu+momentum" in row["evidence"]
    diff, p_holm = _pair(pairs, summary, SIG_MOM, RELU_MOM)
    assert (
        f"diff {round(diff, 3) + 0.0:+.3f}" in row["evidence"]
        and f"p_holm={p_holm:.2g}" in row["evidence"]
    )


# --- all_less ------------------------------------------------------------------------------


def test_all_less_supported_when_lower_at_every_strength():
    summary, pairs = _regularization(0.96, [0.93, 0.93, 0.92, 0.90], [0.96] * 4)
    claim = _claim("all_less", "regularization", cells={"penalty": "l1"}, than={"penalty": "none"})
    row = _one(claim, summary, pairs)
    assert row["verdict"] == SUPPORTED
    assert "lower at strength 1e-05 (diff" in row["evidence"]
    assert "within noise" not in row["evidence"] and row["note"] == "lower at 4 of 4"


def test_all_less_inconclusive_names_where_it_is_lower_and_where_within_noise():
    summary, pairs = _regularization(0.96, [0.96, 0.96, 0.96, 0.90], [0.96] * 4)
    claim = _claim("all_less", "regularization", cells={"penalty": "l1"}, than={"penalty": "none"})
    row = _one(claim, summary, pairs)
    assert row["verdict"] == INCONCLUSIVE
    assert "lower at strength 0.01 (diff -0.06" in row["evidence"]
    assert "within noise at strength 1e-05 (diff" in row["evidence"]
    assert "0.0001 (diff" in row["evidence"] and "0.001 (diff" in row["evidence"]
    assert row["evidence"].startswith("none ") and "[" in row["evidence"]
    assert row["note"] == "lower at 1 of 4: strength 0.01"


def test_all_less_not_supported_when_higher_somewhere():
    summary, pairs = _regularization(0.95, [0.90, 0.90, 0.98, 0.90], [0.95] * 4)
    claim = _claim("all_less", "regularization", cells={"penalty": "l1"}, than={"penalty": "none"})
    row = _one(claim, summary, pairs)
    assert row["verdict"] == NOT_SUPPORTED
    assert "higher at strength 0.001" in row["evidence"]


# --- best_greater --------------------------------------------------------------------------

L2 = _claim("best_greater", "regularization", cells={"penalty": "l2"}, than={"penalty": "none"})


def test_best_greater_chooses_on_validation_not_test():
    # 1e-05 is best on test but worst on validation; 0.001 is best on validation and worse
    # than no penalty on test. Choosing on test would wrongly say "supported".
    summary, pairs = _regularization(
        0.96, [0.9] * 4, [0.99, 0.95, 0.93, 0.94], l2_val=[0.90, 0.95, 0.99, 0.97]
    )
    row = _one(L2, summary, pairs)
    assert row["verdict"] == NOT_SUPPORTED
    assert "l2 at strength 0.001 chosen on validation (val 0.990" in row["evidence"]
    assert "significantly lower" in row["evidence"]
    assert row["note"].startswith("strength 0.001 chosen on validation")


@pytest.mark.parametrize(("test", "verdict"), [(0.98, SUPPORTED), (0.96, INCONCLUSIVE)])
def test_best_greater_supported_and_inconclusive(test, verdict):
    summary, pairs = _regularization(
        0.96, [0.9] * 4, [0.90, test, 0.90, 0.90], l2_val=[0.9, 0.99, 0.9, 0.9]
    )
    row = _one(L2, summary, pairs)
    assert row["verdict"] == verdict
    assert "strength 0.0001 chosen" in row["evidence"]


def test_best_greater_never_chooses_a_setting_with_diverged_seeds():
    summary, pairs = _regularization(
        0.96, [0.9] * 4, [0.90, 0.98, 0.90, 0.90], l2_val=[0.9, 0.97, 0.99, 0.9]
    )
    summary.loc[summary["combination"] == "penalty-l2_strength-0.001", "n_diverged"] = 1
    row = _one(L2, summary, pairs)
    assert row["verdict"] == SUPPORTED and "strength 0.0001 chosen" in row["evidence"]


# --- matching, missing pieces and protocols ------------------------------------------------


def test_factor_values_match_across_number_spellings():
    summary, pairs = _regularization(0.96, [0.96, 0.96, 0.96, 0.90], [0.96] * 4)
    for strength in ("0.01", 1e-2, "1e-2"):
        claim = _claim(
            "less",
            "regularization",
            cell={"penalty": "l1", "strength": strength},
            than={"penalty": "none"},
        )
        assert _one(claim, summary, pairs)["verdict"] == SUPPORTED


def test_cells_are_named_by_their_factors_after_a_csv_round_trip(tmp_path):
    summary, pairs = _regularization(0.96, [0.96, 0.96, 0.96, 0.90], [0.96] * 4)
    # A summary also carries each cell's tuned rate and counts: they must not name cells.
    summary.insert(3, "lr", [0.001, 0.003, 0.01, 0.001, 0.003, 0.03, 0.1, 0.3, 1.0])
    summary["reached_target"] = range(len(summary))
    summary.to_csv(tmp_path / "summary.csv", index=False)
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    summary, pairs = (
        pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False, na_values=[""])
        for name in ("summary", "pairs")
    )
    claim = _claim("all_less", "regularization", cells={"penalty": "l1"}, than={"penalty": "none"})
    row = _one(claim, summary, pairs)
    assert row["verdict"] == INCONCLUSIVE
    assert "lower at strength 0.01 (diff" in row["evidence"]
    assert " lr " not in row["evidence"] and "reached" not in row["evidence"]


def test_missing_cell_factor_or_study_is_not_tested():
    summary, pairs = _optimization({})
    row = _one(_claim("best", cell={"activation": "relu", "optimizer": "nadam"}), summary, pairs)
    assert row["verdict"] == NOT_TESTED
    assert "optimizer=nadam" in row["evidence"] and "rmsprop" in row["evidence"]

    row = _one(_claim("less", cell=SIG_MOM, than={"depth": 3}), summary, pairs)
    assert row["verdict"] == NOT_TESTED and "no factor 'depth'" in row["evidence"]

    row = _one(_claim("best", cell={"optimizer": "adam"}), summary, pairs)
    assert row["verdict"] == NOT_TESTED and "matches 2" in row["evidence"]

    out = evaluate_claims([L2], ALPHA, {"optimization": summary}, {"optimization": pairs})
    assert list(out["verdict"]) == [NOT_TESTED]
    assert "no results for study 'regularization'" in out.loc[0, "evidence"]

    out = evaluate_claims([_claim("best", cell=RELU_ADAM)], ALPHA, {"optimization": summary}, {})
    assert out.loc[0, "verdict"] == NOT_TESTED and "no paired comparisons" in out.loc[0, "evidence"]


def test_every_claim_is_judged_under_both_protocols(root):
    claims, alpha = load_claims(root / "config" / "claims.yaml")
    opt_cells = {
        # Tuned: ReLU+RMSProp clearly best; at the defaults ReLU+Adam, RMSProp within noise.
        "tuned": [
            ({"activation": a, "optimizer": o}, m, 0.0)
            for (a, o), m in zip(OPT, [0.95, 0.97, 0.95, 0.93, 0.93, 0.90], strict=True)
        ],
        "oneshot": [
            ({"activation": a, "optimizer": o}, m, 0.0)
            for (a, o), m in zip(OPT, [0.951, 0.95, 0.90, 0.92, 0.92, 0.90], strict=True)
        ],
    }
    reg_cells = [({"penalty": "none", "strength": 0.0}, 0.96, 0.9)]
    reg_cells += [({"penalty": "l1", "strength": s}, 0.9, 0.9) for s in STRENGTHS]
    reg_cells += [({"penalty": "l2", "strength": s}, 0.96, 0.9) for s in STRENGTHS]
    summaries, pairs = {}, {}
    summaries["optimization"], pairs["optimization"] = _study(opt_cells)
    summaries["regularization"], pairs["regularization"] = _study(
        {"tuned": reg_cells, "oneshot": reg_cells}
    )
    out = evaluate_claims(claims, alpha, summaries, pairs)
    assert len(out) == 2 * len(claims)
    verdicts = out.set_index(["id", "protocol"])["verdict"]
    assert verdicts["relu_adam_best", "tuned"] == NOT_SUPPORTED
    assert verdicts["relu_adam_best", "oneshot"] == SUPPORTED
    assert verdicts["relu_rmsprop_best", "tuned"] == SUPPORTED
    assert verdicts["sigmoid_momentum_lower", "tuned"] == SUPPORTED
    assert verdicts["sigmoid_momentum_lower", "oneshot"] == INCONCLUSIVE
    assert verdicts["l1_hurts", "oneshot"] == SUPPORTED
    assert verdicts["l2_helps", "tuned"] == INCONCLUSIVE

    sentences = conclusion(out)
    assert len(sentences) == len(claims)
    first = sentences[0]
    assert first.startswith("ReLU+Adam reaches the highest accuracy: not supported with tuned")
    assert "best: relu+rmsprop" in first and "supported at the customary default rates" in first
    assert any(
        s.startswith("L1 regularization") and "supported both with tuned" in s for s in sentences
    )
    # Read back from CSV, empty notes are NaN: the sentences must not change.
    assert conclusion(out.assign(note=np.nan))[0].endswith("at the customary default rates.")


# --- loading -------------------------------------------------------------------------------


def test_config_claims_load(root):
    claims, alpha = load_claims(root / "config" / "claims.yaml")
    assert alpha == 0.05
    assert [c["id"] for c in claims] == [
        "relu_adam_best",
        "relu_rmsprop_best",
        "sigmoid_momentum_lower",
        "sigmoid_sgd_lower",
        "adam_rescues_sigmoid",
        "l1_hurts",
        "l2_helps",
    ]
    kinds = ["best", "best", "less", "less", "less", "all_less", "best_greater"]
    assert [c["kind"] for c in claims] == kinds
    # The optimization study's claims are judged at each depth of the default study.
    assert [c["id"] for c in claims if c.get("by") == "depth"] == [c["id"] for c in claims[:5]]


GOOD = "  - {id: ok, text: fine, study: optimization, kind: best, cell: {optimizer: adam}}\n"


@pytest.mark.parametrize(
    ("claim", "words"),
    [
        ("{id: bad_kind, text: t, study: s, kind: worst, cell: {a: b}}", ["'bad_kind'", "kind"]),
        ("{id: no_than, text: t, study: s, kind: less, cell: {a: b}}", ["'no_than'", "'than'"]),
        ("{id: no_text, study: s, kind: best, cell: {a: b}}", ["'no_text'", "'text'"]),
        (
            "{id: flat, text: t, study: s, kind: all_less, cells: l1, than: {a: b}}",
            ["'flat'", "'cells'"],
        ),
        (
            "{id: typo, text: t, study: s, kind: best, cell: {a: b}, thn: {a: c}}",
            ["'typo'", "'thn'"],
        ),
        ("{id: ok, text: t, study: s, kind: best, cell: {a: b}}", ["'ok'", "duplicate"]),
        ("{text: t, study: s, kind: best, cell: {a: b}}", ["claims[1]", "'id'"]),
    ],
)
def test_load_claims_rejects_malformed_claims_by_id_and_key(tmp_path, claim, words):
    path = tmp_path / "claims.yaml"
    path.write_text(f"alpha: 0.05\nclaims:\n{GOOD}  - {claim}\n")
    with pytest.raises(ValueError) as err:
        load_claims(path)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "text", ["alpha: 1.5\nclaims:\n" + GOOD, "alpha: 0.05\nclaims: []\n", "- just a list\n"]
)
def test_load_claims_rejects_a_malformed_file(tmp_path, text):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="claims.yaml"):
        load_claims(path)


def test_a_claim_by_depth_is_judged_at_each_depth_and_says_what_depth_does():
    # Sigmoid+Momentum is well below ReLU+Momentum at depth 3 only.
    means = {("sigmoid", "momentum", 3): 0.40, ("relu", "momentum", 3): 0.65}
    cells = [
        ({"activation": a, "optimizer": o, "depth": d}, means.get((a, o, d), 0.60), 0.0)
        for d in (1, 3)
        for a, o in [("relu", "momentum"), ("sigmoid", "momentum")]
    ]
    summary, pairs = _study({"tuned": cells})
    claim = _claim(
        "less",
        cell={"activation": "sigmoid", "optimizer": "momentum"},
        than={"activation": "relu", "optimizer": "momentum"},
        by="depth",
    )
    out = evaluate_claims([claim], ALPHA, {"optimization": summary}, {"optimization": pairs})
    assert list(out["at"]) == ["depth 1", "depth 3"]
    assert list(out["verdict"]) == [INCONCLUSIVE, SUPPORTED]
    (sentence,) = conclusion(out)
    assert "with 1 hidden layer, inconclusive" in sentence
    assert "with 3 hidden layers, supported" in sentence
    assert sentence.endswith(
        "Depth changes the verdict at tuned rates: inconclusive with 1 hidden layer, "
        "supported with 3 hidden layers."
    )
    # Without `by`, the two depths are two cells the claim cannot tell apart.
    del claim["by"]
    row = _one(claim, summary, pairs)
    assert row["verdict"] == NOT_TESTED and "name it by more factors" in row["evidence"]


def test_by_must_name_a_factor_not_fixed_in_the_claim(tmp_path):
    path = tmp_path / "claims.yaml"
    claim = _claim("best", cell={"activation": "relu", "depth": 1}, by="depth")
    path.write_text(yaml.safe_dump({"claims": [claim]}))
    with pytest.raises(ValueError, match="claim 'c_best': by: 'depth' is also fixed"):
        load_claims(path)


def test_by_a_factor_the_study_lacks_judges_the_claim_once():
    summary, pairs = _optimization({("sigmoid", "momentum"): 0.80})
    claim = _claim(
        "less",
        cell={"activation": "sigmoid", "optimizer": "momentum"},
        than={"activation": "relu", "optimizer": "momentum"},
        by="depth",
    )
    row = _one(claim, summary, pairs)
    assert row["verdict"] == SUPPORTED and row["at"] == ""
