"""The original study's claims as data (config/claims.yaml), judged on a study's runs.

A claim is a statement about the cells of one study (a cell is a set of factor values): that
one cell is the most accurate (`best`), below or above another (`less`, `greater`), below
another at every level of a factor (`all_less`), or above it at the level chosen on the tuning
seeds' validation accuracy (`best_greater`). Each claim names the contrasts it rests on (paired
differences of test accuracy over the evaluation seeds) and a smallest difference that matters,
its `margin` (default one accuracy point).

The contrasts that the claims of a study name, under one protocol, are its confirmatory family,
fixed by the claims file and the study's cells before any result exists; their p-values are
Holm-adjusted over that family only, the difference tests and the equivalence tests each. Every
other pair of cells (`stats.pairwise_comparisons`) is exploratory. A contrast then reads, by the
rule table `RULES` (printed in the report):

- *no meaningful difference*: equivalent within ±margin by two one-sided tests (TOST);
- *supported*: otherwise, significantly different in the claimed direction;
- *contradicted*: otherwise, significantly different in the other direction;
- *undecided*: neither, with the smallest difference the seeds detect at 80% power and the
  number of evaluation seeds that would decide it (`optreg.analysis.inference`).

A `best` claim is judged on the joint bootstrap of every cell's rank over the evaluation seeds
(`inference.chance_of_best`): best, tied for best with k cells, or not best. A claim judged
`by:` a factor is judged at each of its levels, and the change of its contrast across the levels
is tested on its own (`interactions`), so that "depth changes the effect" is said only where the
data show it. No choice (the strength of `best_greater`) uses an evaluation seed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optreg.analysis.inference import (
    chance_of_best,
    contrast,
    detectable,
    interaction,
    seeds_to_decide,
)
from optreg.analysis.sequential import sequential_p
from optreg.analysis.stats import holm, mean_ci
from optreg.study.claims import DEFAULT_MARGIN, KINDS, load_claims
from optreg.training.protocol import choose_value

__all__ = ["DEFAULT_MARGIN", "KINDS", "evaluate_claims", "load_claims"]

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NO_DIFFERENCE = "no meaningful difference"
UNDECIDED = "undecided"
NOT_TESTED = "not tested"
VERDICTS = (SUPPORTED, CONTRADICTED, NO_DIFFERENCE, UNDECIDED, NOT_TESTED)

# The rule table, in the order the rules are applied; the report prints it as it stands.
RULES = [
    {
        "verdict": NO_DIFFERENCE,
        "contrast": "equivalent within ±margin: both one-sided tests (TOST) have Holm-adjusted "
        "p < alpha, whether or not the difference is also detectably non-zero",
        "best": "tied for best within the margin: no cell is above it, and every cell not "
        "significantly below it is equivalent to it within ±margin",
    },
    {
        "verdict": SUPPORTED,
        "contrast": "otherwise, the paired t-test has Holm-adjusted p < alpha and the difference "
        "has the claimed sign",
        "best": "best: its contrast with every other cell of its level is supported "
        "(significantly above, not within the margin)",
    },
    {
        "verdict": CONTRADICTED,
        "contrast": "otherwise, Holm-adjusted p < alpha with the other sign (for a claim about "
        "every level: any level contradicted or within the margin)",
        "best": "not best: some cell is significantly above it, by more than the margin",
    },
    {
        "verdict": UNDECIDED,
        "contrast": "neither: stated with the difference the seeds detect at 80% power and the "
        "seeds that would decide it if mean and spread stayed as measured (both at alpha "
        "over the family's size)",
        "best": "tied for best with k cells, some neither below it nor within the margin; the "
        "seeds needed are those that would decide the last of them",
    },
]

# The sign each kind claims for its contrast (cell − than): -1 below, +1 above.
DIRECTION = {"less": -1, "greater": 1, "all_less": -1, "best_greater": 1}

FINDINGS_COLUMNS = [
    "id",
    "text",
    "study",
    "at",
    "protocol",
    "verdict",
    "evidence",
    "note",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "p_holm",
    "p_tost_holm",
    "margin",
    "detectable",
    "seeds_needed",
    "p_best",
    "family",
    "family_own",
    "seeds",
    "contrast_cells",
    "chosen_edge",
    "look",
]

INTERACTION_COLUMNS = [
    "id",
    "text",
    "study",
    "protocol",
    "factor",
    "levels",
    "change",
    "ci_low",
    "ci_high",
    "p",
    "p_holm",
    "changes",
    "evidence",
]

PROTOCOL_PHRASES = {
    "tuned": "with tuned learning rates",
    "oneshot": "at the customary default rates",
    "small": "with rates tuned on a small grid around the default",
    "retuned": "with rates tuned again on other seeds",
}

RUN_COLUMNS = ("phase", "protocol", "combination", "seed", "test_accuracy")


def _norm(value) -> str:
    """A factor value as a label, so that 0.01, "0.01" and 1e-2 compare equal."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Number):
        return f"{float(value):g}"
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _num_key(label: str):
    """Sort key: numbers by value, before other labels."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _spec_text(spec: dict) -> str:
    return "+".join(_norm(v) for v in spec.values())


def _label(row, keys) -> str:
    return "+".join(_norm(row[k]) for k in keys)


def format_p(p: float, alpha: float = 0.05) -> str:
    """A p-value with digits enough to see which side of alpha it falls: 0.0503, never 0.05."""
    if p is None or not math.isfinite(p):
        return "–"
    if p < 1e-4:
        return "< 0.0001"
    for digits in range(2, 7):
        text = f"{p:.{digits}g}"
        shown = float(text)
        if shown != alpha and (shown < alpha) == (p < alpha):
            return text
    return f"{p:.6g}"


def _points(x: float, sign: bool = True) -> str:
    """An accuracy difference in points (0.0123 -> '+1.23')."""
    if not math.isfinite(x):
        return "–"
    value = round(100 * x, 2) + 0.0  # + 0.0: a rounded -0.0 reads 0.00
    return f"{value:+.2f}" if sign else f"{value:.2f}"


@dataclass
class _Cells:
    """One study under one protocol: its cells' factor values and per-seed test accuracies."""

    study: str
    protocol: str
    table: pd.DataFrame  # one row per cell: combination and factor values
    wide: pd.DataFrame  # seeds × combinations: test accuracy

    @property
    def where(self) -> str:
        return f"{self.study} ({self.protocol})" if self.protocol else self.study

    def subset(self, mask) -> _Cells:
        return _Cells(self.study, self.protocol, self.table[mask].reset_index(drop=True), self.wide)

    def select(self, spec: dict) -> tuple[pd.DataFrame | None, str]:
        """Rows matching every factor value of `spec`, or None and what is missing."""
        mask = np.ones(len(self.table), dtype=bool)
        for key, value in spec.items():
            if key not in self.table.columns:
                return None, f"{self.where} has no factor '{key}'"
            labels = self.table[key].map(_norm)
            hit = (labels == _norm(value)).to_numpy()
            if not hit.any():
                values = ", ".join(sorted(set(labels), key=_num_key))
                return None, f"no {self.where} cell with {key}={value} (values: {values})"
            mask &= hit
        if not mask.any():
            return None, f"no {self.where} cell with {_spec_text(spec)}"
        return self.table[mask], ""

    def one(self, spec: dict) -> tuple[pd.Series | None, str]:
        """The single row matching `spec`, or None and why not."""
        rows, problem = self.select(spec)
        if rows is None:
            return None, problem
        if len(rows) > 1:
            return None, (
                f"{_spec_text(spec)} matches {len(rows)} {self.where} cells "
                f"({', '.join(map(str, rows['combination']))}); name it by more factors"
            )
        return rows.iloc[0], ""

    def values(self, combination: str) -> np.ndarray:
        return self.wide[combination].to_numpy(dtype=float)

    def interval(self, combination: str) -> str:
        """'62.6% [61.9, 63.3]': mean test accuracy and its 95% Student-t interval, in percent."""
        ci = mean_ci(self.values(combination))
        if not math.isfinite(ci["mean"]):
            return "–"
        if not math.isfinite(ci["ci_low"]):
            return f"{100 * ci['mean']:.1f}%"
        return f"{100 * ci['mean']:.1f}% [{100 * ci['ci_low']:.1f}, {100 * ci['ci_high']:.1f}]"


@dataclass
class _Plan:
    """One claim at one level (`at`) of one study and protocol: the cells it names and the
    contrasts (cell, than) it rests on, before any result is looked at."""

    claim: dict
    at: str
    cells: _Cells
    keys: list[str]
    contrasts: list[tuple[str, str]] = field(default_factory=list)
    rows: pd.DataFrame | None = None  # all_less / best_greater: the matching cells
    than: pd.Series | None = None
    cell: pd.Series | None = None
    varying: list[str] = field(default_factory=list)
    problem: str = ""
    # The pair (cell, than) its verdict rests on, once judged: what `interactions` compares.
    chosen: tuple | None = None


@dataclass
class _Family:
    """The confirmatory family of one study and protocol: every contrast its claims name,
    each tested once (difference and equivalence), Holm-adjusted over the family."""

    alpha: float
    tests: dict = field(default_factory=dict)  # (a, b, margin) -> contrast dict, a − b
    own: set = field(default_factory=set)  # cells with a value of the config's own entries

    def add(self, a: str, b: str, margin: float) -> None:
        key = (a, b, margin) if a < b else (b, a, margin)
        self.tests.setdefault(key, None)

    def run(self, cells: _Cells, looks: list[list[int]] | None = None, n_max: int = 0) -> None:
        """Test every contrast; with several `looks` (the seeds of each look so far, of a
        design giving a contrast at most `n_max` seeds), each test's p is its sequential p
        over the looks (`optreg.analysis.sequential`)."""
        for a, b, margin in self.tests:
            if looks and len(looks) > 1:
                c = _sequential(cells, a, b, margin, looks, n_max)
            else:
                c = contrast(cells.values(a), cells.values(b), margin)
            self.tests[(a, b, margin)] = c
        keys = list(self.tests)
        p = holm([self.tests[k]["p"] for k in keys])
        p_tost = holm([self.tests[k]["p_tost"] for k in keys])
        for k, ph, pt in zip(keys, p, p_tost, strict=True):
            self.tests[k].update(p_holm=float(ph), p_tost_holm=float(pt))

    @property
    def size(self) -> int:
        return sum(1 for t in self.tests.values() if t and math.isfinite(t["p"]))

    @property
    def size_own(self) -> int:
        """How many of the family's contrasts involve a cell of the config's own optimizers,
        models or data sets: what the user's additions added to the adjustment."""
        return sum(
            1
            for (a, b, _), t in self.tests.items()
            if t and math.isfinite(t["p"]) and (a in self.own or b in self.own)
        )

    @property
    def level(self) -> float:
        """The most stringent level Holm applies (alpha / family size): the level at which
        the power of an undecided contrast is stated."""
        return self.alpha / max(1, self.size)

    def get(self, a: str, b: str, margin: float) -> dict:
        """The contrast of a − b (the stored one turned round where needed)."""
        if a < b:
            return dict(self.tests[(a, b, margin)])
        c = dict(self.tests[(b, a, margin)])
        c["diff"] = -c["diff"]
        c["ci_low"], c["ci_high"] = -c["ci_high"], -c["ci_low"]
        return c


def _sequential(
    cells: _Cells, a: str, b: str, margin: float, looks: list[list[int]], n_max: int
) -> dict:
    """The contrast a − b on every seed so far, its p-values those of the sequential design
    over the looks (each look: the seeds of it and the looks before)."""
    wide, seen, at = cells.wide, set(), []
    for seeds in looks:
        seen |= set(seeds)
        rows = wide[wide.index.isin(seen)]
        at.append(contrast(rows[a].to_numpy(float), rows[b].to_numpy(float), margin))
    ns = [c["n"] for c in at]
    out = dict(at[-1])
    out["p"] = sequential_p(ns, [c["p"] for c in at], n_max)
    out["p_tost"] = max(
        sequential_p(ns, [c["p_lower"] for c in at], n_max),
        sequential_p(ns, [c["p_upper"] for c in at], n_max),
    )
    if not math.isfinite(at[-1]["p"]):
        out["p"] = out["p_tost"] = math.nan
    return out


def _outcome(c: dict, direction: int, alpha: float) -> str:
    """The rule table (`RULES`) on one contrast of cell − than whose claimed sign is `direction`."""
    if not math.isfinite(c["p"]):
        return NOT_TESTED
    if c["p_tost_holm"] < alpha:
        return NO_DIFFERENCE
    if c["p_holm"] < alpha:
        return SUPPORTED if np.sign(c["diff"]) == direction else CONTRADICTED
    return UNDECIDED


def _power_text(c: dict, family: _Family, margin: float) -> tuple[str, float, int | None]:
    """What would decide an undecided contrast: the difference its seeds detect at 80% power
    and the seeds that would decide it, both at the family's most stringent level."""
    mde = detectable(c["n"], c["sd"], family.level)
    needed = seeds_to_decide(c["diff"], c["sd"], margin, family.level)
    seeds = f"about {needed} seeds would decide it" if needed else "over 1000 seeds would not"
    text = (
        f"{c['n']} seeds detect a difference of {_points(mde, sign=False)} points at 80% power; "
        f"{seeds} if the difference and its spread stay as measured"
    )
    return text, mde, needed


def _contrast_text(c: dict, a: str, b: str, alpha: float) -> str:
    return (
        f"{a} − {b}: {_points(c['diff'])} points [{_points(c['ci_low'])}, "
        f"{_points(c['ci_high'])}], p_holm {format_p(c['p_holm'], alpha)}"
    )


def _numbers(c: dict | None, margin: float, family: _Family) -> dict:
    out = {"margin": margin, "family": family.size, "family_own": family.size_own}
    if c:
        out.update({k: c[k] for k in ("diff", "ci_low", "ci_high", "p", "p_holm", "p_tost_holm")})
        out["seeds"] = c["n"]
    return out


def _judge_pair(plan: _Plan, a: pd.Series, b: pd.Series, family: _Family, head: str = "") -> dict:
    """A claim resting on one contrast, cell a − cell b, with the claim's direction."""
    claim, cells = plan.claim, plan.cells
    direction, margin, alpha = DIRECTION[claim["kind"]], claim["margin"], family.alpha
    ca, cb = str(a["combination"]), str(b["combination"])
    c = family.get(ca, cb, margin)
    name_a = _label(a, plan.keys)
    name_b = _label(b, list(claim["than"]) if "cells" in claim else plan.keys)
    means = f"{name_a} {cells.interval(ca)} vs {name_b} {cells.interval(cb)}"
    if not math.isfinite(c["p"]):
        return {
            "verdict": NOT_TESTED,
            "evidence": f"{head}{means}; fewer than two seeds in common",
            "note": "not compared",
            **_numbers(None, margin, family),
        }
    verdict = _outcome(c, direction, alpha)
    claimed, other = ("lower", "higher") if direction < 0 else ("higher", "lower")
    text = _contrast_text(c, name_a, name_b, alpha)
    numbers = _numbers(c, margin, family)
    if verdict == NO_DIFFERENCE:
        tail = note = (
            f"equivalent within ±{_points(margin, sign=False)} points "
            f"(TOST p_holm {format_p(c['p_tost_holm'], alpha)})"
        )
    elif verdict == SUPPORTED:
        tail, note = f"{name_a} is {claimed}, as claimed", f"{claimed}, as claimed"
    elif verdict == CONTRADICTED:
        tail, note = f"{name_a} is {other}, against the claim", f"{other}, against the claim"
    else:
        tail, numbers["detectable"], numbers["seeds_needed"] = _power_text(c, family, margin)
        tail = "neither a difference nor equivalence is shown; " + tail
        needed = numbers["seeds_needed"]
        note = (
            f"about {needed} seeds would decide it" if needed else "over 1000 seeds needed"
        ) + f"; {c['n']} detect {_points(numbers['detectable'], sign=False)} points"
    return {
        "verdict": verdict,
        "evidence": f"{head}{means}; {text}: {tail}",
        "note": note,
        **numbers,
    }


def _judge_best(plan: _Plan, family: _Family) -> dict:
    """A `best` claim: the contrasts of the cell against every other cell of its level, each
    read by the rule table, decide; the joint bootstrap's chance of being best and rank
    interval of each cell are stated beside them (see `RULES` for why they do not decide)."""
    cells, alpha, margin = plan.cells, family.alpha, plan.claim["margin"]
    cell, table = plan.cell, plan.cells.table
    combos = [str(x) for x in table["combination"]]
    me = combos.index(str(cell["combination"]))
    odds = chance_of_best(cells.wide[combos].to_numpy(dtype=float))
    p_best, low, high = odds["p_best"], odds["rank_low"], odds["rank_high"]
    name = _label(cell, plan.keys)

    def who(i: int) -> str:
        return (
            f"{_label(table.iloc[i], plan.keys)} {cells.interval(combos[i])} "
            f"(P(best) {p_best[i]:.2f}, rank {low[i]:.0f}–{high[i]:.0f})"
        )

    versus = {i: family.get(combos[me], combos[i], margin) for i in range(len(combos)) if i != me}
    if any(not math.isfinite(c["p"]) for c in versus.values()):
        return {
            "verdict": NOT_TESTED,
            "evidence": f"{who(me)}: some cell shares fewer than two seeds with it",
            "note": "not compared",
            **_numbers(None, margin, family),
        }
    outcome = {i: _outcome(c, 1, alpha) for i, c in versus.items()}
    above = [i for i, o in outcome.items() if o == CONTRADICTED]  # significantly above the cell
    tied = [i for i, o in outcome.items() if o == NO_DIFFERENCE]
    open_ = [i for i, o in outcome.items() if o == UNDECIDED]
    head = f"{who(me)} among {len(combos)} cells"
    numbers = _numbers(None, margin, family)
    numbers["p_best"] = float(p_best[me])

    def deciding(i: int) -> dict:
        return {**_numbers(versus[i], margin, family), "p_best": float(p_best[me])}

    if above:
        top = max(above, key=lambda i: -versus[i]["diff"])
        text = _contrast_text(versus[top], name, _label(table.iloc[top], plan.keys), alpha)
        listed = "; ".join(who(i) for i in above)
        return {
            "verdict": CONTRADICTED,
            "evidence": f"{head}; significantly more accurate than it, by more than the "
            f"margin: {listed}; {text}",
            "note": f"not best: {len(above)} cell{'s' if len(above) > 1 else ''} above it",
            **deciding(top),
        }
    if not open_ and not tied:
        runner = min(versus, key=lambda i: versus[i]["diff"])
        text = _contrast_text(versus[runner], name, _label(table.iloc[runner], plan.keys), alpha)
        return {
            "verdict": SUPPORTED,
            "evidence": f"{head}; significantly above every other cell; against the runner-up "
            f"{who(runner)}: {text}",
            "note": f"best of {len(combos)}",
            **deciding(runner),
        }
    if not open_:
        listed = "; ".join(who(i) for i in tied)
        return {
            "verdict": NO_DIFFERENCE,
            "evidence": f"{head}; above the others, and within ±{_points(margin, sign=False)} "
            f"points of: {listed}",
            "note": f"tied for best with {len(tied)} cell{'s' if len(tied) > 1 else ''}, "
            "within the margin",
            **numbers,
        }
    needed = [
        seeds_to_decide(versus[i]["diff"], versus[i]["sd"], margin, family.level) for i in open_
    ]
    seeds = (
        f"about {max(needed)} seeds would decide it"
        if all(needed)
        else "over 1000 seeds would not decide it"
    )
    closest = max(open_, key=lambda i: versus[i]["p_holm"])
    numbers.update(deciding(closest))
    numbers["seeds_needed"] = max(needed) if all(needed) else None
    numbers["detectable"] = max(
        detectable(versus[i]["n"], versus[i]["sd"], family.level) for i in open_
    )
    k = len(open_) + len(tied)
    # The closest rivals first (highest mean); three named, the rest counted.
    rivals = sorted(open_, key=lambda i: versus[i]["diff"])
    listed = "; ".join(
        f"{who(i)}: {_points(versus[i]['diff'])} points [{_points(versus[i]['ci_low'])}, "
        f"{_points(versus[i]['ci_high'])}], p_holm {format_p(versus[i]['p_holm'], alpha)}"
        for i in rivals[:3]
    )
    if len(rivals) > 3:
        listed += f"; and {len(rivals) - 3} more"
    return {
        "verdict": UNDECIDED,
        "evidence": f"{head}; neither above nor within the margin of: {listed}; {seeds} "
        "if the differences and their spread stay as measured",
        "note": f"tied for best with {k} cell{'s' if k > 1 else ''}; {seeds}",
        **numbers,
    }


def _judge_all_less(plan: _Plan, family: _Family) -> dict:
    name = _spec_text(plan.claim["cells"])
    judged = [(row, _judge_pair(plan, row, plan.than, family)) for _, row in plan.rows.iterrows()]
    verdicts = [j["verdict"] for _, j in judged]
    by_verdict: dict[str, list] = {}
    for row, j in judged:
        by_verdict.setdefault(j["verdict"], []).append(row)

    def at(verdict: str) -> str:
        return _at(pd.DataFrame(by_verdict[verdict]), plan.varying, name)

    if NOT_TESTED in verdicts:
        verdict = NOT_TESTED
    elif all(v == NO_DIFFERENCE for v in verdicts):
        verdict = NO_DIFFERENCE
    elif CONTRADICTED in verdicts or NO_DIFFERENCE in verdicts:
        verdict = CONTRADICTED
    elif all(v == SUPPORTED for v in verdicts):
        verdict = SUPPORTED
    else:
        verdict = UNDECIDED
    words = {
        SUPPORTED: "lower",
        CONTRADICTED: "higher",
        NO_DIFFERENCE: "no meaningful difference",
        UNDECIDED: "undecided",
        NOT_TESTED: "not compared",
    }
    note = "; ".join(f"{words[v]} at {at(v)}" for v in VERDICTS if v in by_verdict)
    evidence = " | ".join(
        f"{_at(pd.DataFrame([row]), plan.varying, name)}: {j['evidence']}" for row, j in judged
    )
    numbers = _numbers(None, plan.claim["margin"], family)
    undecided = [j for _, j in judged if j["verdict"] == UNDECIDED]
    if verdict == UNDECIDED and all(j.get("seeds_needed") for j in undecided):
        numbers["seeds_needed"] = max(j["seeds_needed"] for j in undecided)
    return {"verdict": verdict, "evidence": evidence, "note": note, **numbers}


def _choose(plan: _Plan, tuning: pd.DataFrame | None, evals: pd.DataFrame, protocol: str) -> tuple:
    """The `best_greater` cell chosen on the tuning seeds' validation accuracy at the rate the
    cell is evaluated at, by the rule that chooses rates (`training.protocol.choose_value`:
    ties to the lower validation loss, then the level nearest the grid's middle, then the
    smaller): never on an evaluation seed. Returns the chosen row and the candidates' table,
    or None and why."""
    if tuning is not None and "protocol" in tuning:
        # The tuning seeds of the protocol: the retuning seeds choose for `retuned`.
        tuning = tuning[tuning["protocol"] == ("retuned" if protocol == "retuned" else "tuned")]
    if tuning is None or tuning.empty:
        return None, "no tuning runs to choose on (evaluation seeds never choose)"
    rates = evals.drop_duplicates("combination").set_index("combination")["lr"]
    rows = []
    for order, (_, row) in enumerate(plan.rows.iterrows()):
        combo = str(row["combination"])
        grid = tuning[tuning["combination"].astype(str) == combo]
        lr = rates.get(combo)
        if lr is None or grid.empty:
            continue
        at_rate = grid[np.isclose(grid["lr"].astype(float), float(lr), rtol=1e-9, atol=0)]
        if at_rate.empty or int(at_rate["n_diverged"].iloc[0]) > 0:
            continue  # as for rates: a setting whose tuning seeds diverged is never chosen
        rows.append(
            {
                "order": order,
                "combination": combo,
                "val": float(at_rate["val_accuracy_mean"].iloc[0]),
                "loss": float(at_rate["val_loss_mean"].iloc[0]),
            }
        )
    if not rows:
        return None, (
            "no candidate has tuning-seed runs at its evaluated rate without divergence "
            "(evaluation seeds never choose)"
        )
    table = pd.DataFrame(rows)
    # The rule that chooses learning rates, on the levels' positions in the sorted grid.
    order = choose_value(
        dict(zip(table["order"], table["val"], strict=True)),
        dict(zip(table["order"], table["loss"], strict=True)),
        grid=range(len(plan.rows)),
    )
    best = table[table["order"] == order].iloc[0]
    chosen = plan.rows[plan.rows["combination"].astype(str) == best["combination"]].iloc[0]
    return chosen, table


def _judge_best_greater(plan: _Plan, family: _Family, tuning, evals, protocol: str) -> dict:
    chosen, table = _choose(plan, tuning, evals, protocol)
    plan.chosen = (chosen, plan.than) if chosen is not None else None
    if chosen is None:
        return {
            "verdict": NOT_TESTED,
            "evidence": table,
            "note": "nothing to choose on",
            **_numbers(None, plan.claim["margin"], family),
        }
    name = _spec_text(plan.claim["cells"])
    at = _at(pd.DataFrame([chosen]), plan.varying, name)
    picked = table[table["combination"] == str(chosen["combination"])].iloc[0]
    edge = chosen_edge(plan, int(picked["order"]))
    beyond = (
        f", the {edge} {plan.varying[0]} tried: a wider grid may hold a better one" if edge else ""
    )
    head = (
        f"{name} at {at} chosen on the tuning seeds' validation accuracy "
        f"({100 * picked['val']:.1f}%, best of {len(table)}{beyond}); "
    )
    out = _judge_pair(plan, chosen, plan.than, family, head=head)
    out["note"] = f"{at} chosen{f' ({edge} tried)' if edge else ''}; {out['note']}"
    out["chosen_edge"] = edge
    return out


def chosen_edge(plan: _Plan, order: int) -> str:
    """'smallest' or 'largest' when the level `best_greater` chose (its position `order` in
    the matching cells, sorted by the one numeric factor that tells them apart) is an end of
    the levels tried, else '': the grid does not show that nothing better lies beyond it.
    Nothing for two levels or fewer (no level is inside), nor for a factor that is not a
    number or when several factors vary."""
    if len(plan.varying) != 1 or len(plan.rows) < 3:
        return ""
    values = plan.rows[plan.varying[0]]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return ""
    return {0: "smallest", len(plan.rows) - 1: "largest"}.get(order, "")


def _plans(claim: dict, cells: _Cells) -> list[_Plan]:
    """The claim at each level of its `by` factor (or once), with the contrasts it names."""
    by = claim.get("by")
    if by is None or by not in cells.table.columns:
        subsets = [("", cells)]
    else:
        labels = cells.table[by].map(_norm)
        subsets = [
            (f"{by} {value}", cells.subset((labels == value).to_numpy()))
            for value in sorted(set(labels), key=_num_key)
        ]
    plans = []
    for at, subset in subsets:
        plan = _Plan(claim, at, subset, keys=[])
        kind = claim["kind"]
        if kind == "best":
            plan.cell, plan.problem = subset.one(claim["cell"])
            plan.keys = list(claim["cell"])
            if plan.cell is not None and len(subset.table) < 2:
                plan.problem = f"{subset.where} has no other cell to compare with"
            if not plan.problem:
                me = str(plan.cell["combination"])
                plan.contrasts = [(me, str(o)) for o in subset.table["combination"] if o != me]
        elif kind in ("less", "greater"):
            plan.cell, problem = subset.one(claim["cell"])
            plan.than, problem_than = subset.one(claim["than"])
            plan.problem = problem or problem_than
            plan.keys = list(dict.fromkeys([*claim["cell"], *claim["than"]]))
            if not plan.problem:
                plan.contrasts = [(str(plan.cell["combination"]), str(plan.than["combination"]))]
        else:
            plan.rows, plan.than, plan.varying, plan.problem = _matching(subset, claim)
            plan.keys = list(dict.fromkeys([*claim["cells"], *claim["than"], *plan.varying]))
            if not plan.problem:
                than = str(plan.than["combination"])
                plan.contrasts = [(str(c), than) for c in plan.rows["combination"]]
        plans.append(plan)
    return plans


def _matching(cells: _Cells, claim: dict):
    """The cells matched by `cells` (without `than`), `than`, the factors telling them apart."""
    rows, problem = cells.select(claim["cells"])
    than, problem_than = cells.one(claim["than"])
    if rows is None or than is None:
        return None, None, [], problem or problem_than
    rows = rows[rows["combination"].astype(str) != str(than["combination"])]
    if rows.empty:
        return None, None, [], f"only {_spec_text(claim['than'])} matches {claim['cells']}"
    varying = [
        c
        for c in cells.table.columns
        if c != "combination" and c not in claim["cells"] and rows[c].map(_norm).nunique() > 1
    ]
    if varying:
        keys = [tuple(_num_key(_norm(r[c])) for c in varying) for _, r in rows.iterrows()]
        rows = rows.iloc[sorted(range(len(rows)), key=keys.__getitem__)]
    return rows, than, varying, ""


def _at(rows, varying, spec_text: str) -> str:
    """'strength 1e-05, 0.01': the levels of the one factor that varies, named once."""
    records = rows.to_dict("records")
    if len(varying) == 1:
        return f"{varying[0]} " + ", ".join(_norm(r[varying[0]]) for r in records)
    if not varying:
        return spec_text if len(records) == 1 else ", ".join(str(r["combination"]) for r in records)
    return ", ".join(" ".join(f"{c} {_norm(r[c])}" for c in varying) for r in records)


def _protocols(evals: pd.DataFrame) -> list[str]:
    found = [str(p) for p in pd.unique(evals["protocol"])]
    return sorted(
        found,
        key=lambda p: (
            (list(PROTOCOL_PHRASES).index(p), p)
            if p in PROTOCOL_PHRASES
            else (len(PROTOCOL_PHRASES), p)
        ),
    )


def _cells(study: str, protocol: str, evals: pd.DataFrame, factors: list[str]) -> _Cells:
    dupes = evals[evals.duplicated(["combination", "seed"], keep=False)]
    if not dupes.empty:
        first = dupes.iloc[0]
        raise ValueError(
            f"study '{study}': cell {first['combination']!r} has evaluation seed "
            f"{first['seed']!r} more than once under protocol {protocol!r}"
        )
    columns = ["combination", *[f for f in factors if f in evals.columns]]
    table = evals.drop_duplicates("combination")[columns].reset_index(drop=True)
    table["combination"] = table["combination"].astype(str)
    wide = evals.assign(combination=evals["combination"].astype(str)).pivot(
        index="seed", columns="combination", values="test_accuracy"
    )
    return _Cells(study, protocol, table, wide.astype(float))


def _own_cells(cells: _Cells, own: dict[str, list]) -> set[str]:
    """The cells with a factor value naming one of the config's own entries."""
    out = set()
    for factor, names in own.items():
        if factor in cells.table.columns and names:
            labels = {_norm(n) for n in names}
            hit = cells.table[factor].map(_norm).isin(labels)
            out |= set(cells.table.loc[hit, "combination"])
    return out


def _interactions(plans: list[_Plan], family: _Family, protocol: str) -> list[dict]:
    """For each claim judged `by:` a factor on one contrast a level: the change of that
    contrast across the levels (same seeds), before the study-wide Holm adjustment."""
    out = []
    by_claim: dict[str, list[_Plan]] = {}
    for plan in plans:
        if plan.at and plan.claim["kind"] in ("less", "greater", "best_greater"):
            by_claim.setdefault(plan.claim["id"], []).append(plan)
    for cid, group in by_claim.items():
        claim = group[0].claim
        pairs = [(p, p.chosen) for p in group if p.chosen is not None]
        if len(pairs) < 2 or len(pairs) != len(group):
            continue
        cells = group[0].cells
        diffs = np.column_stack(
            [
                cells.values(str(a["combination"])) - cells.values(str(b["combination"]))
                for _, (a, b) in pairs
            ]
        )
        result = interaction(diffs)
        levels = [p.at.partition(" ")[2] for p, _ in pairs]
        out.append(
            {
                "id": cid,
                "text": claim["text"],
                "study": cells.study,
                "protocol": protocol,
                "factor": claim["by"],
                "levels": ", ".join(levels),
                **{k: result[k] for k in ("change", "ci_low", "ci_high", "p")},
            }
        )
    return out


def evaluate_claims(
    claims: list[dict],
    alpha: float,
    runs: dict[str, pd.DataFrame],
    factors: dict[str, list[str]],
    tuning: dict[str, pd.DataFrame] | None = None,
    own: dict[str, list] | None = None,
    looks: list[list[int]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Verdict and evidence of every claim under every protocol of its study, and the change
    of each `by:` claim's contrast across the levels of its factor.

    `runs[study]` is the study's runs table (`tables.runs_table`; its evaluation rows are
    used), `factors[study]` its factor names, `tuning[study]` its tuning table
    (`tables.tuning_table`, what `best_greater` chooses on). `own` maps a factor to the values
    that name the config's own optimizers, models or data sets (`family_own` counts the
    contrasts involving them). A claim whose study, cells or seeds are missing is "not
    tested", not an error.

    `looks`, the seeds of each look of a sequential design (`study.matrix.plan_looks`; one look
    or none: every evaluation seed at once), judges each claim at every look on the seeds of
    that look and those before, by the design's sequential p-values, and keeps the verdict of
    the first look that decides it (its `look`); the interactions are those of the last look.
    """
    inputs = (claims, alpha, runs, factors, tuning, own)
    if not looks or len(looks) < 2:
        return _evaluate(inputs)
    n_max = len(set().union(*map(set, looks)))
    judged = [_evaluate(inputs, looks[:k], n_max) for k in range(1, len(looks) + 1)]
    key = ["id", "study", "at", "protocol"]
    chosen: dict[tuple, dict] = {}
    for k, (found, _) in enumerate(judged, start=1):
        for row in found.to_dict("records"):
            at = tuple(row[c] for c in key)
            if at not in chosen or chosen[at]["verdict"] not in DECIDED:
                chosen[at] = {**row, "look": k if row["verdict"] != NOT_TESTED else math.nan}
    for row in chosen.values():
        if row["verdict"] in DECIDED:
            row["note"] = f"{row['note']}; decided at look {row['look']} of {len(looks)}"
        elif row["verdict"] == UNDECIDED:
            row["note"] = f"{row['note']}; still open after {len(looks)} looks"
    findings = pd.DataFrame(list(chosen.values()), columns=FINDINGS_COLUMNS)
    return findings, judged[-1][1]


# The verdicts that end a claim's sequential design.
DECIDED = (SUPPORTED, CONTRADICTED, NO_DIFFERENCE)


def open_cells(findings: pd.DataFrame) -> dict[str, list[str]]:
    """Each study's cells that a claim still undecided compares: the cells a sequential
    design gives its next block of seeds."""
    out: dict[str, set[str]] = {}
    for row in findings.itertuples():
        if row.verdict == UNDECIDED and isinstance(row.contrast_cells, str):
            out.setdefault(str(row.study), set()).update(row.contrast_cells.split(";"))
    return {study: sorted(cells) for study, cells in out.items()}


def _evaluate(
    inputs: tuple, looks: list[list[int]] | None = None, n_max: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`evaluate_claims` (of its first six arguments, `inputs`) at one look: on the
    evaluation seeds of `looks` (without: every evaluation seed)."""
    claims, alpha, runs, factors, tuning, own = inputs
    tuning = tuning or {}
    findings, interactions = [], []
    for study in dict.fromkeys(c["study"] for c in claims):
        mine = [c for c in claims if c["study"] == study]
        table = runs.get(study)
        if table is not None and not table.empty:
            missing = [c for c in RUN_COLUMNS if c not in table.columns]
            if missing:
                raise ValueError(f"runs table of study '{study}' lacks column(s) {missing}")
            evals = table[table["phase"] == "eval"]
            if looks:
                evals = evals[evals["seed"].isin(set().union(*map(set, looks)))]
        if table is None or table.empty or evals.empty:
            for claim in mine:
                findings.append(
                    {
                        "id": claim["id"],
                        "text": claim["text"],
                        "study": study,
                        "at": "",
                        "protocol": "",
                        "verdict": NOT_TESTED,
                        "evidence": f"no results for study '{study}'",
                        "note": "study not run",
                        "margin": claim["margin"],
                    }
                )
            continue
        for protocol in _protocols(evals):
            ev = evals[evals["protocol"].astype(str) == protocol]
            cells = _cells(study, protocol, ev, factors.get(study, []))
            plans = [plan for claim in mine for plan in _plans(claim, cells)]
            family = _Family(alpha, own=_own_cells(cells, own or {}))
            for plan in plans:
                for a, b in plan.contrasts:
                    family.add(a, b, plan.claim["margin"])
            family.run(cells, looks, n_max)
            rows = []
            for plan in plans:
                base = {
                    "id": plan.claim["id"],
                    "text": plan.claim["text"],
                    "study": study,
                    "at": plan.at,
                    "protocol": protocol,
                }
                if plan.problem:
                    rows.append(
                        {
                            **base,
                            "verdict": NOT_TESTED,
                            "evidence": plan.problem,
                            "note": "cell missing",
                            **_numbers(None, plan.claim["margin"], family),
                        }
                    )
                    continue
                kind = plan.claim["kind"]
                if kind == "best":
                    judged = _judge_best(plan, family)
                elif kind in ("less", "greater"):
                    judged = _judge_pair(plan, plan.cell, plan.than, family)
                    plan.chosen = (plan.cell, plan.than)
                elif kind == "all_less":
                    judged = _judge_all_less(plan, family)
                else:
                    judged = _judge_best_greater(plan, family, tuning.get(study), ev, protocol)
                # The cells its contrasts compare (whether they had converged: the report).
                named = sorted({c for pair in plan.contrasts for c in pair})
                rows.append({**base, **judged, "contrast_cells": ";".join(named)})
            findings += rows
            found = _interactions(plans, family, protocol)
            adjusted = holm([r["p"] for r in found])
            for r, p_holm in zip(found, adjusted, strict=True):
                r["p_holm"] = float(p_holm)
                r["changes"] = bool(math.isfinite(p_holm) and p_holm < alpha)
                r["evidence"] = _interaction_text(r, alpha)
            interactions += found
    return (
        pd.DataFrame(findings, columns=FINDINGS_COLUMNS),
        pd.DataFrame(interactions, columns=INTERACTION_COLUMNS),
    )


def _interaction_text(row: dict, alpha: float) -> str:
    levels = row["levels"].split(", ")
    span = f"from {row['factor']} {levels[0]} to {levels[-1]}"
    numbers = (
        f"{_points(row['change'])} points [{_points(row['ci_low'])}, {_points(row['ci_high'])}] "
        f"{span}, p_holm {format_p(row['p_holm'], alpha)}"
    )
    if row["changes"]:
        return f"{row['factor']} changes the effect: it moves by {numbers}"
    return f"no evidence that {row['factor']} changes the effect: {numbers}"


def protocol_phrase(protocol: str) -> str:
    if not protocol:
        return ""
    return PROTOCOL_PHRASES.get(protocol, f"under the {protocol} protocol")
