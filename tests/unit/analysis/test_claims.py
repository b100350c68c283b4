"""Claims as data: loading config/claims.yaml, and each kind's verdicts on synthetic studies
whose per-seed test accuracies are built to a known mean and spread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from optreg.analysis.claims import (
    CONTRADICTED,
    FINDINGS_COLUMNS,
    NO_DIFFERENCE,
    NOT_TESTED,
    RULES,
    SUPPORTED,
    UNDECIDED,
    evaluate_claims,
    format_p,
    load_claims,
)

ALPHA = 0.05
SEEDS = 10
MARGIN = 0.01
_rng = np.random.default_rng(0)
# Seeds shift every cell alike (pairing removes this).
SEED_EFFECT = _rng.normal(0, 0.01, SEEDS)


def _noise(k: int, sd: float, seeds: int = SEEDS) -> np.ndarray:
    """Cell k's own noise over the seeds: centred and scaled to exactly `sd`, so that a cell's
    mean is exactly as specified."""
    x = np.random.default_rng(100 + k).normal(0, 1, seeds)
    x -= x.mean()
    return x / x.std(ddof=1) * sd if sd else x * 0


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _combination(factors: dict) -> str:
    return "_".join(f"{key}-{_label(value)}" for key, value in factors.items())


def _runs(cells_by_protocol: dict, sd: float = 0.003, seeds: int = SEEDS) -> pd.DataFrame:
    """Evaluation runs of (factors, test mean[, own sd]) per cell and protocol."""
    rows = []
    for protocol, cells in cells_by_protocol.items():
        for k, cell in enumerate(cells):
            factors, mean = cell[0], cell[1]
            own = cell[2] if len(cell) > 2 else sd
            values = mean + SEED_EFFECT[:seeds] + _noise(k, own, seeds)
            rows += [
                {
                    "phase": "eval",
                    "protocol": protocol,
                    "combination": _combination(factors),
                    **factors,
                    "seed": 100 + s,
                    "lr": 0.01,
                    "test_accuracy": v,
                    "val_accuracy": np.nan,
                }
                for s, v in enumerate(values)
            ]
    return pd.DataFrame(rows)


def _tuning(cells: list[tuple[dict, float, float]], lr: float = 0.01) -> pd.DataFrame:
    """A tuning table: (factors, tuning-seed validation accuracy, validation loss) at `lr`."""
    return pd.DataFrame(
        [
            {
                "combination": _combination(f),
                **f,
                "lr": lr,
                "seeds": 3,
                "n_diverged": 0,
                "selected": True,
                "val_accuracy_mean": val,
                "val_loss_mean": loss,
            }
            for f, val, loss in cells
        ]
    )


def _claim(kind: str, **keys) -> dict:
    return {
        "id": f"c_{kind}",
        "text": f"a {kind} claim",
        "study": "s",
        "kind": kind,
        "margin": MARGIN,
        **keys,
    }


def _judge(claims, runs, factors, tuning=None):
    findings, interactions = evaluate_claims(
        claims, ALPHA, {"s": runs}, {"s": factors}, {"s": tuning} if tuning is not None else {}
    )
    return findings, interactions


def _one(claim, runs, factors, tuning=None) -> pd.Series:
    findings, _ = _judge([claim], runs, factors, tuning)
    assert len(findings) == 1, findings
    return findings.iloc[0]


OPT = [("relu", "adam"), ("relu", "rmsprop"), ("relu", "momentum")]
OPT += [("sigmoid", "adam"), ("sigmoid", "rmsprop"), ("sigmoid", "momentum")]
OPT_FACTORS = ["activation", "optimizer"]
RELU_ADAM = {"activation": "relu", "optimizer": "adam"}


def _optimization(means: dict, sd: float = 0.003, default: float = 0.55, protocol="tuned"):
    cells = [({"activation": a, "optimizer": o}, means.get((a, o), default)) for a, o in OPT]
    return _runs({protocol: cells}, sd=sd)


# --- the rule table on one contrast ---------------------------------------------------------

SIG_MOM = {"activation": "sigmoid", "optimizer": "momentum"}
RELU_MOM = {"activation": "relu", "optimizer": "momentum"}


@pytest.mark.parametrize(
    ("sigmoid", "sd", "verdict", "words"),
    [
        (0.50, 0.003, SUPPORTED, "lower, as claimed"),
        (0.60, 0.003, CONTRADICTED, "higher, against the claim"),
        # 0.1 points apart, spread 0.4 points: equivalent within the 1-point margin.
        (0.551, 0.003, NO_DIFFERENCE, "equivalent within ±1.00 points"),
        # 0.5 points apart with a spread of 4 points a seed: the data decide nothing.
        (0.545, 0.03, UNDECIDED, "seeds would decide it"),
    ],
)
def test_a_contrast_reads_one_of_four_outcomes(sigmoid, sd, verdict, words):
    runs = _optimization({("sigmoid", "momentum"): sigmoid}, sd=sd)
    row = _one(_claim("less", cell=SIG_MOM, than=RELU_MOM), runs, OPT_FACTORS)
    assert row["verdict"] == verdict
    assert words in row["note"] + row["evidence"]
    # The evidence is phrased with the claim's subject first: sigmoid+momentum − relu+momentum.
    assert "sigmoid+momentum − relu+momentum:" in row["evidence"]


def test_undecided_says_what_the_seeds_detect_and_how_many_would_decide():
    """Observation 3: 'inconclusive' said neither; now the detectable difference at 80% power
    and the number of seeds are stated, and more seeds at the same mean and spread decide."""
    runs = _optimization({("sigmoid", "momentum"): 0.535}, sd=0.03)
    row = _one(_claim("less", cell=SIG_MOM, than=RELU_MOM), runs, OPT_FACTORS)
    assert row["verdict"] == UNDECIDED
    assert row["detectable"] > 0.015 and row["seeds_needed"] > SEEDS
    needed = int(row["seeds_needed"])
    more = _runs(
        {"tuned": [(RELU_MOM, 0.55, 0.03), (SIG_MOM, 0.535, 0.03)]}, seeds=SEEDS
    )  # same cells, then the same mean and spread with the seeds it asked for
    wide = _wider(more, needed)
    assert _one(_claim("less", cell=SIG_MOM, than=RELU_MOM), wide, OPT_FACTORS)["verdict"] in (
        SUPPORTED,
        NO_DIFFERENCE,
    )


def _wider(runs: pd.DataFrame, seeds: int) -> pd.DataFrame:
    """The same cells with `seeds` seeds at each cell's mean and spread."""
    rows = []
    for k, (_, group) in enumerate(runs.groupby("combination", sort=False)):
        first = group.iloc[0].to_dict()
        mean, sd = group["test_accuracy"].mean(), 0.03
        values = mean + _noise(k, sd, seeds)
        rows += [{**first, "seed": 100 + s, "test_accuracy": v} for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_equivalent_and_significant_is_no_meaningful_difference():
    """A real but tiny difference (0.3 points, detectably non-zero) is smaller than the
    margin: no meaningful difference, not 'supported'."""
    runs = _optimization({("sigmoid", "momentum"): 0.547}, sd=0.0005)
    row = _one(_claim("less", cell=SIG_MOM, than=RELU_MOM), runs, OPT_FACTORS)
    assert row["p_holm"] < ALPHA and row["verdict"] == NO_DIFFERENCE


def test_greater_reads_the_claims_direction():
    """Observation 7: 'With sigmoid, Adam beats Momentum' read 'sigmoid+momentum ... vs
    sigmoid+adam (significantly lower)'; as `greater` its subject and sign are the claim's."""
    runs = _optimization({("sigmoid", "adam"): 0.58})
    claim = _claim("greater", cell={"activation": "sigmoid", "optimizer": "adam"}, than=SIG_MOM)
    row = _one(claim, runs, OPT_FACTORS)
    assert row["verdict"] == SUPPORTED and row["note"] == "higher, as claimed"
    assert "sigmoid+adam − sigmoid+momentum: +3.00 points" in row["evidence"]


# --- the confirmatory family ----------------------------------------------------------------


def test_the_family_is_the_claims_contrasts_not_every_pair_of_cells():
    """Observation 2: Holm ran over every pair of the study (276, most across depths that no
    claim compares). Cells no claim names must not change a claim's adjusted p."""
    base = [(RELU_MOM, 0.55, 0.01), (SIG_MOM, 0.54, 0.01)]
    extra = [({"activation": "tanh", "optimizer": f"o{i}"}, 0.5 + i / 100) for i in range(10)]
    claim = _claim("less", cell=SIG_MOM, than=RELU_MOM)
    alone = _one(claim, _runs({"tuned": base}), OPT_FACTORS)
    crowded = _one(claim, _runs({"tuned": base + extra}), OPT_FACTORS)
    assert alone["family"] == crowded["family"] == 1
    assert alone["p_holm"] == pytest.approx(crowded["p_holm"]) == pytest.approx(alone["p"])
    # Two claims: a family of two contrasts, each adjusted for the other.
    other = {
        **_claim("less", cell={"activation": "tanh", "optimizer": "o0"}, than=RELU_MOM),
        "id": "other",
    }
    both, _ = _judge([claim, other], _runs({"tuned": base + extra}), OPT_FACTORS)
    assert list(both["family"]) == [2, 2]
    assert both.loc[0, "p_holm"] == pytest.approx(min(1, 2 * alone["p"]), rel=1e-6) or (
        both.loc[0, "p_holm"] == pytest.approx(max(alone["p"], both.loc[1, "p"]), rel=1e-6)
    )


# --- best --------------------------------------------------------------------------------


def test_best_by_a_hair_is_not_best():
    """Observation 1: a 0.07-point lead with seven cells within noise read 'supported'."""
    means = {OPT[k]: 0.60 - 0.0007 * k for k in range(6)}
    row = _one(_claim("best", cell=RELU_ADAM), _optimization(means, sd=0.003), OPT_FACTORS)
    assert row["verdict"] == NO_DIFFERENCE and "tied for best" in row["note"]
    noisy = _one(_claim("best", cell=RELU_ADAM), _optimization(means, sd=0.03), OPT_FACTORS)
    assert noisy["verdict"] == UNDECIDED and "tied for best with 5 cells" in noisy["note"]
    assert 0 < noisy["p_best"] < 1 and noisy["seeds_needed"] > SEEDS


def test_best_when_clearly_first_and_not_best_when_clearly_beaten():
    clear = _optimization({("relu", "adam"): 0.62})
    row = _one(_claim("best", cell=RELU_ADAM), clear, OPT_FACTORS)
    assert row["verdict"] == SUPPORTED and row["p_best"] == 1.0
    beaten = _optimization({("relu", "adam"): 0.50, ("relu", "momentum"): 0.60})
    row = _one(_claim("best", cell=RELU_ADAM), beaten, OPT_FACTORS)
    assert row["verdict"] == CONTRADICTED and row["note"].startswith("not best")
    assert "relu+momentum" in row["evidence"]


def test_a_cell_decidedly_below_the_best_is_not_best_not_inconclusive():
    """Observation 1: ReLU+RMSProp 1.94 points below the best (p 0.0036) read inconclusive."""
    runs = _optimization({("relu", "rmsprop"): 0.53, ("relu", "momentum"): 0.55}, sd=0.003)
    row = _one(
        _claim("best", cell={"activation": "relu", "optimizer": "rmsprop"}), runs, OPT_FACTORS
    )
    assert row["verdict"] == CONTRADICTED


# --- all_less and best_greater ------------------------------------------------------------

STRENGTHS = [0.0001, 0.001, 0.01]
NONE = {"penalty": "none", "strength": 0.0}
REG_FACTORS = ["penalty", "strength"]


def _regularization(
    l1: list[float], l2: list[float], none: float = 0.58, sd: float = 0.003, protocol: str = "tuned"
):
    cells = [(NONE, none)]
    cells += [({"penalty": "l1", "strength": s}, m) for s, m in zip(STRENGTHS, l1, strict=True)]
    cells += [({"penalty": "l2", "strength": s}, m) for s, m in zip(STRENGTHS, l2, strict=True)]
    return _runs({protocol: cells}, sd=sd)


def test_all_less_supported_when_lower_at_every_strength():
    runs = _regularization([0.55, 0.54, 0.40], [0.58] * 3)
    row = _one(
        _claim("all_less", cells={"penalty": "l1"}, than={"penalty": "none"}), runs, REG_FACTORS
    )
    assert (
        row["verdict"] == SUPPORTED
        and row["note"] == "supported at strength 0.0001, 0.001, 0.01"
        or (row["verdict"] == SUPPORTED and "lower at strength 0.0001, 0.001, 0.01" in row["note"])
    )


def test_all_less_with_no_meaningful_difference_somewhere_is_contradicted():
    """Observation 3: L1 at 0.0001 (+0.06 points) is equivalent to none: 'L1 lowers accuracy at
    every strength' is false, and the note says where."""
    runs = _regularization([0.5806, 0.54, 0.40], [0.58] * 3)
    row = _one(
        _claim("all_less", cells={"penalty": "l1"}, than={"penalty": "none"}), runs, REG_FACTORS
    )
    assert row["verdict"] == CONTRADICTED
    assert "no meaningful difference at strength 0.0001" in row["note"]
    assert "lower at strength 0.001, 0.01" in row["note"]
    every = _regularization([0.5806, 0.5795, 0.5802], [0.58] * 3)
    row = _one(
        _claim("all_less", cells={"penalty": "l1"}, than={"penalty": "none"}), every, REG_FACTORS
    )
    assert row["verdict"] == NO_DIFFERENCE


L2_HELPS = _claim("best_greater", cells={"penalty": "l2"}, than={"penalty": "none"})


def test_best_greater_chooses_on_the_tuning_seeds_never_on_evaluation_seeds():
    """Observation 4: the strength was chosen on the evaluation seeds' validation accuracy.
    The choice now reads the tuning table only: evaluation-seed numbers cannot change it."""
    runs = _regularization([0.5] * 3, [0.60, 0.62, 0.59])
    tuning = _tuning(
        [
            ({"penalty": "l2", "strength": s}, v, 1.0)
            for s, v in zip(STRENGTHS, [0.7, 0.6, 0.5], strict=True)
        ]
    )
    row = _one(L2_HELPS, runs, REG_FACTORS, tuning)
    assert row["note"].startswith("strength 0.0001 chosen")
    # Evaluation seeds whose validation accuracy points elsewhere change nothing.
    loud = runs.assign(val_accuracy=np.where(runs["strength"] == 0.001, 0.99, 0.1))
    assert _one(L2_HELPS, loud, REG_FACTORS, tuning)["note"] == row["note"]
    # Tuning seeds that prefer 0.001 move the choice.
    moved = tuning.assign(val_accuracy_mean=[0.5, 0.7, 0.6])
    assert _one(L2_HELPS, runs, REG_FACTORS, moved)["note"].startswith("strength 0.001 chosen")


def test_best_greater_says_when_its_choice_is_an_end_of_the_levels_tried():
    """A strength chosen at the smallest or largest level tried leaves open whether a level
    beyond it does better: the finding says so; an interior choice is not flagged."""
    runs = _regularization([0.5] * 3, [0.60, 0.62, 0.59])

    def at(vals):
        tuning = _tuning(
            [
                ({"penalty": "l2", "strength": s}, v, 1.0)
                for s, v in zip(STRENGTHS, vals, strict=True)
            ]
        )
        return _one(L2_HELPS, runs, REG_FACTORS, tuning)

    low, middle, high = at([0.7, 0.6, 0.5]), at([0.6, 0.7, 0.5]), at([0.5, 0.6, 0.7])
    assert low["chosen_edge"] == "smallest" and "(smallest tried)" in low["note"]
    assert "the smallest strength tried: a wider grid may hold a better one" in low["evidence"]
    assert high["chosen_edge"] == "largest" and high["note"].startswith("strength 0.01 chosen")
    assert not middle["chosen_edge"] and "tried" not in middle["note"]


def test_best_greater_breaks_a_tie_on_validation_loss():
    runs = _regularization([0.5] * 3, [0.60, 0.62, 0.59])
    tuning = _tuning(
        [
            ({"penalty": "l2", "strength": s}, 0.7, loss)
            for s, loss in zip(STRENGTHS, [1.2, 1.0, 1.1], strict=True)
        ]
    )
    assert _one(L2_HELPS, runs, REG_FACTORS, tuning)["note"].startswith("strength 0.001 chosen")


def test_best_greater_without_tuning_runs_is_not_tested():
    runs = _regularization([0.5] * 3, [0.60, 0.62, 0.59])
    row = _one(L2_HELPS, runs, REG_FACTORS)
    assert row["verdict"] == NOT_TESTED and "evaluation seeds never choose" in row["evidence"]


def test_best_greater_never_chooses_a_setting_whose_tuning_seeds_diverged():
    runs = _regularization([0.5] * 3, [0.60, 0.62, 0.59])
    tuning = _tuning(
        [
            ({"penalty": "l2", "strength": s}, v, 1.0)
            for s, v in zip(STRENGTHS, [0.9, 0.6, 0.5], strict=True)
        ]
    )
    tuning.loc[0, "n_diverged"] = 1
    assert _one(L2_HELPS, runs, REG_FACTORS, tuning)["note"].startswith("strength 0.001 chosen")


# --- by: and interactions -------------------------------------------------------------------


def _by_depth(effects: dict[int, float], sd: float) -> pd.DataFrame:
    cells = []
    for d, effect in effects.items():
        cells += [
            ({**RELU_MOM, "depth": d}, 0.60, sd),
            ({**SIG_MOM, "depth": d}, 0.60 + effect, sd),
        ]
    return _runs({"tuned": cells})


LESS_BY_DEPTH = _claim("less", cell=SIG_MOM, than=RELU_MOM, by="depth")


def test_a_verdict_that_differs_by_depth_is_not_an_interaction():
    """Observation 6: 'inconclusive -> supported' was read as 'depth changes the verdict'.
    The same effect at both depths, decided at one and not the other, changes nothing."""
    quiet = _runs(
        {"tuned": [({**RELU_MOM, "depth": 3}, 0.60, 0.002), ({**SIG_MOM, "depth": 3}, 0.58, 0.002)]}
    )
    loud = _runs(
        {"tuned": [({**RELU_MOM, "depth": 1}, 0.60, 0.05), ({**SIG_MOM, "depth": 1}, 0.58, 0.05)]}
    )
    runs = pd.concat([loud, quiet], ignore_index=True)
    findings, interactions = _judge([LESS_BY_DEPTH], runs, OPT_FACTORS + ["depth"])
    assert list(findings["at"]) == ["depth 1", "depth 3"]
    assert list(findings["verdict"]) == [UNDECIDED, SUPPORTED]
    (row,) = interactions.to_dict("records")
    assert not row["changes"] and row["evidence"].startswith("no evidence that depth changes")
    assert row["change"] == pytest.approx(0.0, abs=1e-9)


def test_an_effect_that_grows_with_depth_is_an_interaction():
    runs = _by_depth({1: -0.005, 3: -0.25}, sd=0.003)
    findings, interactions = _judge([LESS_BY_DEPTH], runs, OPT_FACTORS + ["depth"])
    (row,) = interactions.to_dict("records")
    assert row["changes"] and row["change"] == pytest.approx(-0.245)
    assert row["evidence"].startswith("depth changes the effect")
    assert row["ci_low"] < -0.245 < row["ci_high"]


def test_without_by_two_depths_are_two_cells_the_claim_cannot_tell_apart():
    runs = _by_depth({1: -0.02, 3: -0.02}, sd=0.003)
    claim = {k: v for k, v in LESS_BY_DEPTH.items() if k != "by"}
    row = _one(claim, runs, OPT_FACTORS + ["depth"])
    assert row["verdict"] == NOT_TESTED and "name it by more factors" in row["evidence"]


def test_by_a_factor_the_study_lacks_judges_the_claim_once():
    runs = _optimization({("sigmoid", "momentum"): 0.50})
    row = _one(LESS_BY_DEPTH, runs, OPT_FACTORS)
    assert row["verdict"] == SUPPORTED and row["at"] == ""


# --- the rest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0503, "0.0503"),
        (0.047, "0.047"),
        (0.04996, "0.04996"),
        (0.0014, "0.0014"),
        (0.5, "0.5"),
        (3e-7, "< 0.0001"),
    ],
)
def test_p_values_show_which_side_of_alpha_they_fall(p, text):
    """Observation 7: 0.0503 printed '0.05 (within noise)'."""
    assert format_p(p, 0.05) == text


def test_factor_values_match_across_number_spellings():
    runs = _regularization([0.5] * 3, [0.58] * 3)
    claim = _claim("less", cell={"penalty": "l1", "strength": "1e-2"}, than={"penalty": "none"})
    assert _one(claim, runs, REG_FACTORS)["verdict"] == SUPPORTED


def test_missing_cell_factor_or_study_is_not_tested():
    runs = _optimization({})
    for cell, words in [
        ({"activation": "tanh"}, "values: relu, sigmoid"),
        ({"width": 3}, "no factor 'width'"),
    ]:
        row = _one(_claim("best", cell=cell), runs, OPT_FACTORS)
        assert row["verdict"] == NOT_TESTED and words in row["evidence"]
    findings, _ = evaluate_claims([_claim("best", cell=RELU_ADAM)], ALPHA, {}, {})
    assert findings.loc[0, "verdict"] == NOT_TESTED and "no results" in findings.loc[0, "evidence"]
    assert list(findings.columns) == FINDINGS_COLUMNS


def test_every_claim_is_judged_under_both_protocols(root):
    claims, alpha = load_claims(root / "config" / "claims.yaml")
    factors = {
        "optimization": [*OPT_FACTORS, "depth"],
        "regularization": REG_FACTORS,
        "regularization_underfit": REG_FACTORS,
    }
    grid = [(a, o) for a in ("relu", "sigmoid") for o in ("sgd", "momentum", "rmsprop", "adam")]
    opt = pd.concat(
        [
            _runs(
                {
                    p: [
                        ({"activation": a, "optimizer": o, "depth": d}, 0.5 + 0.01 * k)
                        for k, (a, o) in enumerate(grid)
                    ]
                }
            )
            for p in ("tuned", "oneshot")
            for d in (1, 3)
        ],
        ignore_index=True,
    )
    reg = pd.concat(
        [_regularization([0.5] * 3, [0.6] * 3, protocol=p) for p in ("tuned", "oneshot")]
    )
    tuning = _tuning([({"penalty": "l2", "strength": s}, 0.6, 1.0) for s in STRENGTHS])
    findings, interactions = evaluate_claims(
        claims,
        alpha,
        {"optimization": opt, "regularization": reg, "regularization_underfit": reg},
        factors,
        {"regularization": tuning, "regularization_underfit": tuning},
    )
    by_depth = [c for c in claims if c.get("by") == "depth"]
    assert len(findings) == 2 * (2 * len(by_depth) + len(claims) - len(by_depth))
    assert set(findings["verdict"]) <= {r["verdict"] for r in RULES} | {NOT_TESTED}
    untested = findings[findings["verdict"] == NOT_TESTED]
    assert untested.empty, list(untested["evidence"])
    # A study's family is the same for all its claims: every contrast they name, once.
    assert findings.groupby(["study", "protocol"])["family"].nunique().eq(1).all()
    # Interactions for the claims resting on one contrast a depth.
    assert set(interactions["id"]) == {
        "sigmoid_momentum_lower",
        "sigmoid_sgd_lower",
        "adam_rescues_sigmoid",
    }


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
        "l1_hurts_underfit",
        "l2_helps_underfit",
    ]
    kinds = ["best", "best", "less", "less", "greater", "all_less", "best_greater"] + [
        "all_less",
        "best_greater",
    ]
    assert [c["kind"] for c in claims] == kinds
    assert {c["margin"] for c in claims} == {0.01}
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
        ("{id: pct, text: t, study: s, kind: best, cell: {a: b}, margin: 1}", ["'pct'", "margin"]),
        ("{id: neg, text: t, study: s, kind: best, cell: {a: b}, margin: -0.01}", ["margin"]),
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
    "text",
    [
        "alpha: 1.5\nclaims:\n" + GOOD,
        "alpha: 0.05\nclaims: []\n",
        "- just a list\n",
        "margin: 0\nclaims:\n" + GOOD,
    ],
)
def test_load_claims_rejects_a_malformed_file(tmp_path, text):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="claims.yaml"):
        load_claims(path)


def test_a_claim_without_margin_takes_the_files(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text("margin: 0.02\nclaims:\n" + GOOD)
    (claim,), _ = load_claims(path)
    assert claim["margin"] == 0.02


def test_by_must_name_a_factor_not_fixed_in_the_claim(tmp_path):
    path = tmp_path / "claims.yaml"
    claim = _claim("best", cell={"activation": "relu", "depth": 1}, by="depth")
    path.write_text(yaml.safe_dump({"claims": [claim]}))
    with pytest.raises(ValueError, match="claim 'c_best': by: 'depth' is also fixed"):
        load_claims(path)


def test_the_family_counts_the_contrasts_of_the_configs_own_optimizers():
    """Issue 21, observation 8: an added optimizer enlarges a best claim's family, and with it
    every claim's adjustment; the findings say by how many contrasts."""
    cells = [({"activation": a, "optimizer": o}, 0.55) for a, o in OPT]
    cells += [({"activation": "relu", "optimizer": "lion"}, 0.55)]
    runs = _runs({"tuned": cells})
    claims = [_claim("best", cell=RELU_ADAM), _claim("less", cell=SIG_MOM, than=RELU_MOM)]
    findings, _ = evaluate_claims(
        claims, ALPHA, {"s": runs}, {"s": OPT_FACTORS}, own={"optimizer": ["lion"]}
    )
    assert list(findings["family"]) == [7, 7] and list(findings["family_own"]) == [1, 1]


def test_best_greater_chooses_on_the_retuning_seeds_under_the_retuned_protocol():
    runs = pd.concat(
        [
            _regularization([0.5] * 3, [0.60, 0.62, 0.59]),
            _regularization([0.5] * 3, [0.60, 0.62, 0.59], protocol="retuned"),
        ]
    )
    seeds = {"tuned": [0.7, 0.6, 0.5], "retuned": [0.5, 0.6, 0.7]}  # each prefers its own
    tuning = pd.concat(
        [
            _tuning(
                [
                    ({"penalty": "l2", "strength": s}, v, 1.0)
                    for s, v in zip(STRENGTHS, values, strict=True)
                ]
            ).assign(protocol=protocol)
            for protocol, values in seeds.items()
        ]
    )
    findings, _ = _judge([L2_HELPS], runs, REG_FACTORS, tuning)
    notes = dict(zip(findings["protocol"], findings["note"], strict=True))
    assert notes["tuned"].startswith("strength 0.0001 chosen")
    assert notes["retuned"].startswith("strength 0.01 chosen")
    assert "penalty-none_strength-0" in findings["contrast_cells"].iloc[0].split(";")
