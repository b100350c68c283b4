"""The claims file (config/claims.yaml): read and checked before any job starts.

What the claims say and how they are judged is `optreg.analysis.claims`; this module only
knows the file's shape, so the workflow can refuse a malformed file at start-up without
importing the analysis.
"""

from __future__ import annotations

import numbers

import yaml

# The keys each kind needs besides id, text, study and kind.
KINDS = {
    "best": ("cell",),
    "less": ("cell", "than"),
    "greater": ("cell", "than"),
    "all_less": ("cells", "than"),
    "best_greater": ("cells", "than"),
}

COMMON_KEYS = ("id", "text", "study", "kind")

# Optional on every kind: a factor (`by: depth`) at each of whose levels the claim is judged
# on its own, among the cells at that level (findings carry it in `at`; a study without that
# factor judges the claim once); and the claim's own margin.
OPTIONAL_KEYS = ("by", "margin")

# The smallest difference in test accuracy that matters, when the file names none: one point.
DEFAULT_MARGIN = 0.01


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


def _check_margin(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(
            f"{where}: margin must be a test-accuracy difference between 0 and 1 "
            f"(0.01 is one accuracy point), got {value!r}"
        )
    return float(value)


def load_claims(path) -> tuple[list[dict], float]:
    """Read and validate a claims file; return its claims (each with its `margin`) and alpha.

    A malformed file raises ValueError naming the claim id and key. Whether a
    cell exists is only known from a study's runs: a claim naming no cell is
    reported "not tested" by `evaluate_claims`.
    """
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with keys 'alpha', 'margin' and 'claims'")
    unknown = sorted(set(raw) - {"alpha", "margin", "claims"})
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {unknown}; allowed: alpha, margin, claims"
        )
    alpha = raw.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"{path}: alpha must be a number between 0 and 1, got {alpha!r}")
    margin = _check_margin(raw.get("margin", DEFAULT_MARGIN), str(path))
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
                f"(allowed: {', '.join([*COMMON_KEYS, *needed, *OPTIONAL_KEYS])})"
            )
        for key in needed:
            _check_spec(claim[key], where, key)
        by = claim.get("by")
        if by is not None and (not isinstance(by, str) or not by.strip()):
            raise ValueError(f"{where}: by: must be a factor name, e.g. depth; got {by!r}")
        if by is not None and any(by in claim[key] for key in needed):
            raise ValueError(f"{where}: by: '{by}' is also fixed in the claim's cells")
        checked = dict(claim)
        checked["margin"] = (
            _check_margin(claim["margin"], f"{where}: margin") if "margin" in claim else margin
        )
        out.append(checked)
    return out, float(alpha)
