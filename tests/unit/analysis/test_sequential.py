"""The sequential design: its spending function, its p-values, its error rates in simulation,
and claims judged look by look."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optreg.analysis.claims import (
    NO_DIFFERENCE,
    SUPPORTED,
    UNDECIDED,
    evaluate_claims,
    open_cells,
)
from optreg.analysis.sequential import look_level, sequential_p, spent
from optreg.study.matrix import plan_looks

ALPHA = 0.05


def test_spending_spends_little_early_and_all_of_alpha_at_the_end():
    assert spent(0, ALPHA) == 0 and spent(1, ALPHA) == ALPHA
    # O'Brien-Fleming type: a third of the seeds spends under 0.001 of 0.05.
    assert spent(1 / 3, ALPHA) < 0.001 < spent(2 / 3, ALPHA) < ALPHA
    levels = [look_level(a, b, ALPHA) for a, b in ((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1))]
    assert math.isclose(sum(levels), ALPHA)


def test_one_look_at_every_seed_is_the_test_itself():
    assert sequential_p([10], [0.03], 10) == 0.03
    # A look whose seeds did not grow tests nothing new.
    assert sequential_p([10, 10], [0.03, 0.001], 10) == 0.03


@pytest.mark.parametrize("fractions", [(0.5, 1.0), (1 / 3, 2 / 3, 1.0), (0.25, 0.75)])
def test_a_look_exactly_at_its_level_has_p_alpha(fractions):
    """The p-value is the alpha at which the look's level is reached: a p equal to the level
    of look l (with every earlier look far from it) gives back alpha."""
    n_max = 120
    ns = [round(f * n_max) for f in fractions]
    for last in range(len(ns)):
        before = fractions[last - 1] if last else 0.0
        ps = [0.9] * last + [look_level(before, fractions[last], ALPHA)]
        assert math.isclose(sequential_p(ns[: last + 1], ps, n_max), ALPHA, rel_tol=1e-6)


def test_bad_looks_are_refused():
    with pytest.raises(ValueError, match="must not fall"):
        sequential_p([10, 5], [0.1, 0.1], 20)
    with pytest.raises(ValueError, match="more than the design"):
        sequential_p([30], [0.1], 20)
    with pytest.raises(ValueError, match="seed counts for"):
        sequential_p([10], [0.1, 0.2], 20)


def test_plan_looks_blocks_the_extra_seeds():
    assert plan_looks({"evaluation_seeds": [1, 2]}) == [[1, 2]]
    protocol = {"evaluation_seeds": [1, 2], "sequential": {"seeds": [5, 6, 7, 8, 9], "block": 2}}
    assert plan_looks(protocol) == [
        [1, 2],
        [5, 6],
        [7, 8],
        [9],
    ]


# --- the design in simulation ---------------------------------------------------------------

SIMULATIONS = 4000
LOOKS = (10, 20, 30)  # seeds at each look
MARGIN = 0.5  # in units of the per-seed spread


def _looks_p(delta: float, rng) -> dict[str, np.ndarray]:
    """Per simulation and look: the t-test p and both one-sided TOST p-values of paired
    differences drawn around `delta` with spread 1."""
    d = rng.normal(delta, 1.0, (SIMULATIONS, LOOKS[-1]))
    out = {"p": [], "lower": [], "upper": []}
    for n in LOOKS:
        x = d[:, :n]
        mean, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n)
        out["p"].append(2 * stats.t.sf(np.abs(mean / se), n - 1))
        out["lower"].append(stats.t.sf((mean + MARGIN) / se, n - 1))
        out["upper"].append(stats.t.cdf((mean - MARGIN) / se, n - 1))
    return {k: np.column_stack(v) for k, v in out.items()}


def _design(p: dict[str, np.ndarray], sequential: bool = True) -> tuple[np.ndarray, ...]:
    """Each simulation run through the design: it stops at the first look where the
    difference (t-test) or equivalence (TOST) is shown. Returns which was shown and the seeds
    it took. `sequential=False` tests every look at the full alpha (the naive design)."""
    differ = np.zeros(SIMULATIONS, bool)
    equal = np.zeros(SIMULATIONS, bool)
    seeds = np.full(SIMULATIONS, LOOKS[-1])
    for i in range(SIMULATIONS):
        for k in range(len(LOOKS)):
            ns = LOOKS[: k + 1]
            if sequential:
                p_diff = sequential_p(ns, p["p"][i, : k + 1], LOOKS[-1])
                p_tost = max(
                    sequential_p(ns, p["lower"][i, : k + 1], LOOKS[-1]),
                    sequential_p(ns, p["upper"][i, : k + 1], LOOKS[-1]),
                )
            else:
                p_diff = p["p"][i, : k + 1].min()
                p_tost = np.maximum(p["lower"][i, : k + 1], p["upper"][i, : k + 1]).min()
            if p_tost < ALPHA or p_diff < ALPHA:
                equal[i], differ[i], seeds[i] = p_tost < ALPHA, p_diff < ALPHA, ns[-1]
                break
    return differ, equal, seeds


# Three standard errors of a rate of 0.05 over the simulations.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS)


def test_no_true_difference_is_declared_a_difference_more_often_than_alpha():
    p = _looks_p(0.0, np.random.default_rng(1))
    differ, _, _ = _design(p)
    assert differ.mean() <= ALPHA + SLACK
    # Testing every look at the full alpha would not hold it: the correction is needed.
    naive, _, _ = _design(p, sequential=False)
    assert naive.mean() > ALPHA + SLACK


def test_a_difference_at_the_margin_is_declared_equivalent_no_more_often_than_alpha():
    p = _looks_p(MARGIN, np.random.default_rng(2))
    _, equal, _ = _design(p)
    assert equal.mean() <= ALPHA + SLACK


def test_a_real_difference_is_found_more_often_than_with_the_first_block_alone():
    """What the extra seeds buy: a difference of 0.6 spreads is found by the design more often
    than by the first look's 10 seeds tested alone at alpha, at fewer seeds than the cap."""
    p = _looks_p(0.6, np.random.default_rng(3))
    differ, _, seeds = _design(p)
    first_alone = (p["p"][:, 0] < ALPHA).mean()
    assert differ.mean() > first_alone + 0.2
    assert seeds.mean() < LOOKS[-1]


# --- claims judged look by look -------------------------------------------------------------


def _runs(means: dict[str, list[float]], sd: float, seeds: list[int]) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for cell, mean in means.items():
        values = mean + rng.normal(0, sd, len(seeds))
        rows += [
            {
                "phase": "eval",
                "protocol": "tuned",
                "combination": f"optimizer-{cell}",
                "optimizer": cell,
                "seed": s,
                "test_accuracy": v,
            }
            for s, v in zip(seeds, values, strict=True)
        ]
    return pd.DataFrame(rows)


def _claim(cid: str, cell: str, than: str) -> dict:
    return {
        "id": cid,
        "text": cid,
        "study": "s",
        "kind": "less",
        "cell": {"optimizer": cell},
        "than": {"optimizer": than},
        "margin": 0.01,
    }


def test_a_claim_keeps_the_verdict_of_the_look_that_decided_it():
    looks = [list(range(10)), list(range(10, 20))]
    seeds = looks[0] + looks[1]
    # a clearly below b (decided at look 1); c slightly below b (needs the second block).
    runs = _runs({"a": 0.50, "b": 0.60, "c": 0.585}, sd=0.02, seeds=seeds)
    claims = [_claim("clear", "a", "b"), _claim("close", "c", "b")]
    first, _ = evaluate_claims(claims, ALPHA, {"s": runs[runs.seed < 10]}, {"s": ["optimizer"]})
    assert list(first["verdict"]) == [SUPPORTED, UNDECIDED]
    assert open_cells(first) == {"s": ["optimizer-b", "optimizer-c"]}

    both, _ = evaluate_claims(claims, ALPHA, {"s": runs}, {"s": ["optimizer"]}, looks=looks)
    clear, close = both.iloc[0], both.iloc[1]
    assert clear["verdict"] == SUPPORTED and clear["look"] == 1 and clear["seeds"] == 10
    assert "decided at look 1 of 2" in clear["note"]
    assert close["look"] == 2 and close["seeds"] == 20
    assert close["verdict"] in (SUPPORTED, UNDECIDED, NO_DIFFERENCE)
    # Judged look by look on the seeds so far: look 2's p is the design's, not the t-test's.
    plain, _ = evaluate_claims(claims, ALPHA, {"s": runs}, {"s": ["optimizer"]})
    assert close["p"] >= plain.iloc[1]["p"]


def test_without_extra_seeds_the_design_is_the_fixed_one():
    seeds = list(range(10))
    runs = _runs({"a": 0.50, "b": 0.60}, sd=0.02, seeds=seeds)
    claims = [_claim("clear", "a", "b")]
    fixed, _ = evaluate_claims(claims, ALPHA, {"s": runs}, {"s": ["optimizer"]})
    one, _ = evaluate_claims(claims, ALPHA, {"s": runs}, {"s": ["optimizer"]}, looks=[seeds])
    pd.testing.assert_frame_equal(fixed, one)
