"""The original study's claims as data (config/claims.yaml), judged on a study's tables.

Each claim is a statement about the cells of one study (a cell is a set of
factor values). A difference counts only when its Holm-adjusted paired p-value
over seeds, from `stats.pairwise_comparisons`, is below alpha; otherwise it is
within noise. Every claim is judged under each protocol of its study's summary
(learning rates tuned on validation, or the customary defaults).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTED = (
    "supported",
    "not supported",
    "inconclusive",
    "not tested",
)


# The keys each kind needs besides id, text, study and kind.
KINDS = {
    "best": ("cell",),
    "less": ("cell", "than"),
    "all_less": ("cells", "than"),
    "best_greater": ("cells", "than"),
}


COMMON_KEYS = ("id", "text", "study", "kind")


# Optional on every kind: a factor (`by: depth`) at each of whose values the claim is judged
# on its own, among the cells with that value; findings then carry it in `at`. In a study
# without that factor the claim is judged once, as without `by`.
OPTIONAL_KEYS = ("by",)


FINDINGS_COLUMNS = ["id", "text", "study", "at", "protocol", "verdict", "evidence", "note"]


SUMMARY_COLUMNS = (
    "combination",
    "test_accuracy_mean",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
)


PAIRS_COLUMNS = ("cell_a", "cell_b", "diff", "p_holm")


PROTOCOL_PHRASES = {
    "tuned": "with tuned learning rates",
    "oneshot": "at the customary default rates",
}


def _check_spec(spec, where: str, key: str) -> None:
    if not isinstance(spec, dict) or not spec:
        raise ValueError(
            f"{where}: '{key}' must be a non-empty mapping of factor to value, "
            f"e.g. {{activation: relu}}; got {spec!r}"
        )
    for factor, value in spec.items():
        if not isinstance(factor, str) or not factor:
            raise ValueError(f"{where}: '{key}' has a factor name {factor!r}; use a string")
        if not isinstance(value, str | numbers.Number) or isinstance(value, complex):
            raise ValueError(
                f"{where}: '{key}.{factor}' must be a single value (string or number), "
                f"got {value!r}"
            )


def load_claims(path) -> tuple[list[dict], float]:
    """Read and validate a claims file; return its claims and alpha.

    A malformed file raises ValueError naming the claim id and key. Whether a
    cell exists is only known from a study's tables: a claim naming no cell is
    reported "not tested" by `evaluate_claims`.
    """
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with keys 'alpha' and 'claims'")
    unknown = sorted(set(raw) - {"alpha", "claims"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; allowed: alpha, claims")
    alpha = raw.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"{path}: alpha must be a number between 0 and 1, got {alpha!r}")
    claims = raw.get("claims")
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{path}: 'claims' must be a non-empty list of claims")

    seen: set[str] = set()
    out = []
    for i, claim in enumerate(claims):
        where = f"{path}: claims[{i}]"
        if not isinstance(claim, dict):
            raise ValueError(f"{where}: each claim must be a mapping, got {claim!r}")
        cid = claim.get("id")
        if not isinstance(cid, str) or not cid:
            raise ValueError(f"{where}: missing key 'id' (a non-empty string)")
        where = f"{path}: claim '{cid}'"
        if cid in seen:
            raise ValueError(f"{where}: id: duplicate id '{cid}'")
        seen.add(cid)
        for key in COMMON_KEYS[1:]:
            if not isinstance(claim.get(key), str) or not claim[key].strip():
                raise ValueError(f"{where}: missing key '{key}' (a non-empty string)")
        kind = claim["kind"]
        if kind not in KINDS:
            raise ValueError(
                f"{where}: kind: unknown kind '{kind}'; expected one of {', '.join(KINDS)}"
            )
        needed = KINDS[kind]
        for key in needed:
            if key not in claim:
                raise ValueError(f"{where}: missing key '{key}' (kind '{kind}' needs {needed})")
        extra = sorted(set(claim) - set(COMMON_KEYS) - set(needed) - set(OPTIONAL_KEYS))
        if extra:
            raise ValueError(
                f"{where}: unexpected key '{extra[0]}' for kind '{kind}' "
                f"(allowed: {', '.join([*COMMON_KEYS, *needed])})"
            )
        for key in needed:
            _check_spec(claim[key], where, key)
        by = claim.get("by")
        if by is not None and (not isinstance(by, str) or not by.strip()):
            raise ValueError(f"{where}: by: must be a factor name, e.g. depth; got {by!r}")
        if by is not None and any(by in claim[key] for key in needed):
            raise ValueError(f"{where}: by: '{by}' is also fixed in the claim's cells")
        out.append(dict(claim))
    return out, float(alpha)


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


def _factor_columns(table: pd.DataFrame) -> list[str]:
    """Columns that are factors: those whose `name-value` is part of every row's cell id.

    Cell ids are built as `factor-value_factor-value` (config.Combination), so this
    tells factors from a protocol's learning rate or any count a summary carries.
    """
    ids = table["combination"].astype(str).tolist()
    out = []
    for column in table.columns:
        if column == "combination":
            continue
        labels = [{_norm(v), str(v)} for v in table[column]]
        if ids and all(
            any(re.search(rf"(^|_){re.escape(f'{column}-{x}')}(_|$)", cid) for x in label)
            for cid, label in zip(ids, labels, strict=True)
        ):
            out.append(column)
    return out


def _ci(row) -> str:
    return (
        f"{row['test_accuracy_mean']:.3f} "
        f"[{row['test_accuracy_ci_low']:.3f}, {row['test_accuracy_ci_high']:.3f}]"
    )


def _p(p: float) -> str:
    return f"{p:.2g}"


@dataclass
class _Context:
    """One study under one protocol: its cells, their paired comparisons and alpha."""

    study: str
    protocol: str
    table: pd.DataFrame
    lookup: dict
    alpha: float

    @property
    def where(self) -> str:
        return f"{self.study} ({self.protocol})" if self.protocol else self.study

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

    def compare(self, x, y) -> dict | None:
        """Paired comparison of cell x against y (diff = x − y), or None if never compared."""
        found = self.lookup.get((str(x["combination"]), str(y["combination"])))
        if found is None:
            return None
        diff, p_holm = found
        significant = bool(np.isfinite(p_holm) and p_holm < self.alpha)
        if significant and diff < 0:
            direction = "lower"
        elif significant and diff > 0:
            direction = "higher"
        else:
            direction = "within noise"
        return {"diff": diff, "p_holm": p_holm, "direction": direction}


def _cmp_text(c: dict) -> str:
    # Adding 0.0 turns a rounded -0.0 into 0.0: a zero difference never reads as negative.
    return f"diff {round(c['diff'], 3) + 0.0:+.3f}, p_holm={_p(c['p_holm'])}"


def _lookup(pairs: pd.DataFrame) -> dict:
    """(cell_x, cell_y) → (mean of x − y, p_holm), in both orientations."""
    out = {}
    for r in pairs.to_dict("records"):
        a, b = str(r["cell_a"]), str(r["cell_b"])
        diff, p_holm = float(r["diff"]), float(r["p_holm"])
        out[(a, b)] = (diff, p_holm)
        out[(b, a)] = (-diff, p_holm)
    return out


def _best(ctx: _Context, claim: dict) -> tuple[str, str, str]:
    cell, problem = ctx.one(claim["cell"])
    if cell is None:
        return NOT_TESTED, problem, "cell missing"
    keys = list(claim["cell"])
    table = ctx.table
    others = table[table["combination"].astype(str) != str(cell["combination"])]
    if others.empty:
        return NOT_TESTED, f"{ctx.where} has no other cell to compare with", "one cell only"
    ranked = table.sort_values(
        "test_accuracy_mean", ascending=False, kind="stable", na_position="last"
    )
    order = list(ranked["combination"].astype(str))
    rank = order.index(str(cell["combination"])) + 1
    first = ranked.iloc[0]
    groups: dict[str, list] = {"lower": [], "within noise": [], "higher": [], "not compared": []}
    for _, other in ranked.iterrows():
        if str(other["combination"]) == str(cell["combination"]):
            continue
        c = ctx.compare(cell, other)
        groups[c["direction"] if c else "not compared"].append((other, c))
    better = groups["lower"]  # the cell is significantly lower than these
    parts = [f"{_label(cell, keys)} {_ci(cell)} ranks {rank} of {len(table)}"]
    if better:
        shown = "; ".join(f"{_label(o, keys)} {_ci(o)} ({_cmp_text(c)})" for o, c in better[:3])
        more = f"; and {len(better) - 3} more" if len(better) > 3 else ""
        parts.append(f"significantly below {len(better)} cell(s): {shown}{more}")
    elif rank > 1:
        c = ctx.compare(cell, first)
        vs = f" ({_cmp_text(c)})" if c else " (not compared)"
        parts.append(f"first: {_label(first, keys)} {_ci(first)}{vs}; none significantly better")
    parts.append(
        f"{len(groups['within noise'])} other cell(s) within noise of it, "
        f"{len(groups['higher'])} significantly below it"
    )
    if groups["not compared"]:
        parts.append(f"{len(groups['not compared'])} not compared (no paired seeds)")
    evidence = "; ".join(parts)
    if better:
        return NOT_SUPPORTED, evidence, f"best: {_label(first, keys)} {_ci(first)}"
    if rank == 1:
        note = f"first of {len(table)}, {len(groups['within noise'])} other cell(s) within noise"
        return SUPPORTED, evidence, note
    note = f"ranks {rank}, within noise of the best, {_label(first, keys)} {_ci(first)}"
    return INCONCLUSIVE, evidence, note


def _less(ctx: _Context, claim: dict) -> tuple[str, str, str]:
    cell, problem = ctx.one(claim["cell"])
    than, problem_than = ctx.one(claim["than"])
    if cell is None or than is None:
        return NOT_TESTED, problem or problem_than, "cell missing"
    keys = list(dict.fromkeys([*claim["cell"], *claim["than"]]))
    c = ctx.compare(cell, than)
    head = f"{_label(cell, keys)} {_ci(cell)} vs {_label(than, keys)} {_ci(than)}"
    if c is None:
        return NOT_TESTED, f"{head}; never compared (no paired seeds)", "not compared"
    evidence = f"{head}: {_cmp_text(c)}"
    if c["direction"] == "lower":
        return SUPPORTED, evidence + " (significantly lower)", _cmp_text(c)
    if c["direction"] == "higher":
        return NOT_SUPPORTED, evidence + " (significantly higher)", _cmp_text(c)
    return INCONCLUSIVE, evidence + " (within noise)", _cmp_text(c)


def _matching(ctx: _Context, claim: dict):
    """The cells matched by `cells` (without `than`), `than`, the factors telling them apart."""
    rows, problem = ctx.select(claim["cells"])
    than, problem_than = ctx.one(claim["than"])
    if rows is None or than is None:
        return None, None, [], problem or problem_than
    rows = rows[rows["combination"].astype(str) != str(than["combination"])]
    if rows.empty:
        return None, None, [], f"only {_spec_text(claim['than'])} matches {claim['cells']}"
    varying = [
        c
        for c in _factor_columns(ctx.table)
        if c not in claim["cells"] and rows[c].map(_norm).nunique() > 1
    ]
    if varying:
        keys = [tuple(_num_key(_norm(r[c])) for c in varying) for _, r in rows.iterrows()]
        rows = rows.iloc[sorted(range(len(rows)), key=keys.__getitem__)]
    return rows, than, varying, ""


def _at(rows, varying, spec_text: str, extra=None) -> str:
    """'strength 1e-05 (x), 0.01 (y)': the factor named once when a single one varies."""
    extra = extra or [""] * len(rows)
    records = rows.to_dict("records")
    if len(varying) == 1:
        items = [f"{_norm(r[varying[0]])}{e}" for r, e in zip(records, extra, strict=True)]
        return f"{varying[0]} " + ", ".join(items)
    if not varying:
        # No factor tells the cells apart (ids not built from factors): name them by id.
        names = [spec_text] if len(records) == 1 else [str(r["combination"]) for r in records]
    else:
        names = [" ".join(f"{c} {_norm(r[c])}" for c in varying) for r in records]
    return ", ".join(f"{n}{e}" for n, e in zip(names, extra, strict=True))


def _all_less(ctx: _Context, claim: dict) -> tuple[str, str, str]:
    rows, than, varying, problem = _matching(ctx, claim)
    if rows is None:
        return NOT_TESTED, problem, "cells missing"
    name = _spec_text(claim["cells"])
    groups: dict[str, list] = {"lower": [], "within noise": [], "higher": [], "not compared": []}
    for _, row in rows.iterrows():
        c = ctx.compare(row, than)
        groups[c["direction"] if c else "not compared"].append((row, c))
    parts = [
        f"{_label(than, claim['than'])} {_ci(than)}",
        f"{name} at " + _at(rows, varying, name, [f" {_ci(r)}" for _, r in rows.iterrows()]),
    ]
    for group, entries in groups.items():
        if entries:
            frame = pd.DataFrame([r for r, _ in entries])
            extra = [f" ({_cmp_text(c)})" if c else "" for _, c in entries]
            parts.append(f"{group} at {_at(frame, varying, name, extra)}")
    evidence = "; ".join(parts)
    lower, higher = groups["lower"], groups["higher"]
    note = f"lower at {len(lower)} of {len(rows)}"
    if 0 < len(lower) < len(rows):
        note += f": {_at(pd.DataFrame([r for r, _ in lower]), varying, name)}"
    if higher:
        note += f", higher at {_at(pd.DataFrame([r for r, _ in higher]), varying, name)}"
    if higher:
        return NOT_SUPPORTED, evidence, note
    if len(lower) == len(rows):
        return SUPPORTED, evidence, note
    return INCONCLUSIVE, evidence, note


def _best_greater(ctx: _Context, claim: dict) -> tuple[str, str, str]:
    rows, than, varying, problem = _matching(ctx, claim)
    if rows is None:
        return NOT_TESTED, problem, "cells missing"
    name = _spec_text(claim["cells"])
    candidates = rows[rows["val_accuracy_mean"].notna()]
    if "n_diverged" in candidates.columns:
        # As for learning rates: a setting where any seed diverged is never chosen.
        candidates = candidates[candidates["n_diverged"] == 0]
    if candidates.empty:
        return NOT_TESTED, f"no {name} cell without diverged seeds has a validation accuracy", ""
    # The choice uses validation accuracy only; test accuracy is what is then compared.
    chosen = candidates.iloc[int(np.argmax(candidates["val_accuracy_mean"].to_numpy()))]
    at = _at(pd.DataFrame([chosen]), varying, name)
    c = ctx.compare(chosen, than)
    head = (
        f"{name} at {at} chosen on validation (val {chosen['val_accuracy_mean']:.3f}, "
        f"best of {len(candidates)}): {_ci(chosen)} vs {_label(than, claim['than'])} {_ci(than)}"
    )
    if c is None:
        return NOT_TESTED, f"{head}; never compared (no paired seeds)", "not compared"
    evidence = f"{head}: {_cmp_text(c)}"
    note = f"{at} chosen on validation, {_cmp_text(c)}"
    if c["direction"] == "higher":
        return SUPPORTED, evidence + " (significantly higher)", note
    if c["direction"] == "lower":
        return NOT_SUPPORTED, evidence + " (significantly lower)", note
    return INCONCLUSIVE, evidence + " (within noise)", note


EVALUATORS = {"best": _best, "less": _less, "all_less": _all_less, "best_greater": _best_greater}


def _protocols(table: pd.DataFrame | None) -> list[str]:
    if table is None or table.empty:
        return []
    if "protocol" not in table.columns:
        return [""]
    return [str(p) for p in pd.unique(table["protocol"])]


def _require(table: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")


def _rows_of(table: pd.DataFrame, protocol: str) -> pd.DataFrame:
    if "protocol" in table.columns:
        table = table[table["protocol"].astype(str) == protocol]
    return table.reset_index(drop=True)


def evaluate_claims(
    claims: list[dict],
    alpha: float,
    summaries: dict[str, pd.DataFrame],
    pairs: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """Verdict and evidence of every claim under every protocol of its study.

    `summaries[study]` has one row per cell and protocol; `pairs[study]` is
    `stats.pairwise_comparisons` per protocol with a `protocol` column. A claim
    whose study, cells or comparisons are missing is "not tested", not an error.
    """
    everywhere = list(dict.fromkeys(p for t in summaries.values() for p in _protocols(t)))
    rows = []
    for claim in claims:
        kind, study = claim["kind"], claim["study"]
        if kind not in EVALUATORS:
            raise ValueError(f"claim '{claim['id']}': unknown kind '{kind}'")
        base = {"id": claim["id"], "text": claim["text"], "study": study}
        summary = summaries.get(study)
        if summary is None or summary.empty:
            for protocol in everywhere or [""]:
                rows.append(
                    {
                        **base,
                        "protocol": protocol,
                        "verdict": NOT_TESTED,
                        "evidence": f"no results for study '{study}'",
                        "note": "study not run",
                    }
                )
            continue
        needed = SUMMARY_COLUMNS + (("val_accuracy_mean",) if kind == "best_greater" else ())
        _require(summary, needed, f"summary of study '{study}'")
        study_pairs = pairs.get(study)
        if study_pairs is not None:
            _require(study_pairs, PAIRS_COLUMNS, f"pairs table of study '{study}'")
        by = claim.get("by")
        for protocol in _protocols(summary):
            lookup = {} if study_pairs is None else _lookup(_rows_of(study_pairs, protocol))
            table = _rows_of(summary, protocol)
            # Judged at each value of `by` among those cells only; the p-values stay Holm-
            # adjusted over every pair of the study, so splitting makes no test laxer. A study
            # without that factor is judged as a whole.
            subsets = (
                [("", table)]
                if by is None or by not in table.columns
                else [
                    (f"{by} {value}", table[table[by].map(_norm) == value].reset_index(drop=True))
                    for value in sorted(set(table[by].map(_norm)), key=_num_key)
                ]
            )
            for at, subset in subsets:
                ctx = _Context(study, protocol, subset, lookup, alpha)
                if not lookup:
                    verdict, evidence, note = (
                        NOT_TESTED,
                        f"no paired comparisons of {ctx.where} cells",
                        "no comparisons",
                    )
                else:
                    verdict, evidence, note = EVALUATORS[kind](ctx, claim)
                row = {"protocol": protocol, "verdict": verdict, "evidence": evidence}
                rows.append({**base, "at": at, **row, "note": note})
    return pd.DataFrame(rows, columns=FINDINGS_COLUMNS)


def _phrase(protocol: str) -> str:
    if not protocol:
        return ""
    return PROTOCOL_PHRASES.get(protocol, f"under the {protocol} protocol")


def _present(value) -> str:
    """A cell read back from CSV: missing notes come back as NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _at_phrase(at: str) -> str:
    """'depth 3' -> 'with 3 hidden layers'; other factors as they are."""
    factor, _, value = at.partition(" ")
    if factor == "depth":
        return f"with {value} hidden layer{'' if value == '1' else 's'}"
    return f"at {at}"


def conclusion(findings: pd.DataFrame) -> list[str]:
    """One plain sentence per claim: its verdict under each protocol, with the deciding fact.

    A claim judged at each value of a factor (`at`, e.g. depth) gets one clause per value,
    then a plain statement of what that factor does to the verdict at the tuned rates."""
    if "at" not in findings.columns:
        findings = findings.assign(at="")
    sentences = []
    for _, group in findings.groupby("id", sort=False):
        ats = list(dict.fromkeys(_present(a) for a in group["at"]))
        if ats == [""]:
            sentences.append(_sentence(group))
            continue
        clauses = [
            f"{_at_phrase(at)}, {_sentence(group[group['at'].map(_present) == at], body=True)}"
            for at in ats
        ]
        text = group["text"].iloc[0]
        sentences.append(f"{text}: {'; '.join(clauses)}. {_effect_of(group, ats)}")
    return sentences


def factor_effects(findings: pd.DataFrame) -> list[dict]:
    """For each claim judged at several values of a factor (`at`): its text and a plain
    sentence on what that factor does to its verdict at the tuned rates."""
    if "at" not in findings.columns:
        return []
    out = []
    for _, group in findings.groupby("id", sort=False):
        ats = [a for a in dict.fromkeys(_present(a) for a in group["at"]) if a]
        if ats:
            out.append({"claim": group["text"].iloc[0], "effect": _effect_of(group, ats)})
    return out


def _effect_of(group: pd.DataFrame, ats: list[str]) -> str:
    """What the `at` factor does to a claim's verdict at the tuned rates, in plain words."""
    tuned = group[group["protocol"].map(_present).isin(["tuned", ""])]
    verdicts = {
        _present(r["at"]): r["verdict"] for r in tuned.to_dict("records") if _present(r["at"])
    }
    factor = ats[0].partition(" ")[0]
    name = "Depth" if factor == "depth" else factor.capitalize()
    if len(set(verdicts.values())) <= 1:
        verdict = next(iter(verdicts.values()), NOT_TESTED)
        return f"{name} does not change the verdict at tuned rates ({verdict} at every {factor})."
    changes = ", ".join(f"{verdicts[a]} {_at_phrase(a)}" for a in ats if a in verdicts)
    return f"{name} changes the verdict at tuned rates: {changes}."


def _sentence(group: pd.DataFrame, body: bool = False) -> str:
    """A claim's verdict under each protocol, with the deciding fact; `body`: without the
    claim's text."""
    rank = {p: i for i, p in enumerate(PROTOCOL_PHRASES)}
    records = sorted(
        group.to_dict("records"),
        key=lambda r: rank.get(_present(r["protocol"]), len(rank)),
    )
    verdicts = [r["verdict"] for r in records]
    tails = []
    for r in records:
        note = _present(r.get("note"))
        tails.append(_phrase(_present(r["protocol"])) + (f" ({note})" if note else ""))
    if len(records) == 2 and verdicts[0] == verdicts[1]:
        # The same verdict under both protocols: say it once.
        text = f"{verdicts[0]} both {tails[0].strip()} and {tails[1].strip()}"
    else:
        text = ", ".join(f"{v} {t}".strip() for v, t in zip(verdicts, tails, strict=True))
    return text if body else f"{records[0]['text']}: {text}."
