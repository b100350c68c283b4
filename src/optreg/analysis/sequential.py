"""Evaluation seeds spent where a verdict is still open: a group-sequential design.

With `protocol.sequential` set, a study's claims are first judged on its evaluation seeds
(look 1); every cell of a claim still undecided then gets the next block of seeds (look 2),
and so on up to the last block declared. A contrast is tested at each look where its paired
seeds grew, each time at the share of alpha that an alpha-spending function allots that look:

- the spending function is Lan and DeMets' O'Brien-Fleming type, alpha(t) = 2 - 2 Phi(z / sqrt t)
  with z the normal quantile 1 - alpha / 2 and t = n / n_max, the fraction of the most seeds
  the design could give the contrast; it spends almost nothing early, so a contrast decided at
  the first look had to be clear, and the last look keeps nearly the whole alpha;
- look l is tested at alpha(t_l) - alpha(t_l-1) (Bonferroni over the looks: their sum is
  alpha(t_last) <= alpha whichever looks are taken, however the data chose them; it ignores the
  correlation of the looks, which is conservative, and with this spending function costs little);
- `sequential_p` turns the looks of one test into one p-value: the smallest alpha at which some
  look rejects. It is a valid p-value, so Holm over a claim family applies to it unchanged, and
  with a single look at all the seeds it is the look's own p (a later look's p-value above
  `MAX_LEVEL` is reported as 1).

A claim's verdict is the one of the first look at which it is decided (supported,
contradicted, or no meaningful difference): the design stops there, whatever seeds its cells
get later for other claims. `tests/unit/analysis/test_sequential.py` simulates the design and
checks its error rates at the boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

_NORMAL = NormalDist()

# A later look's level grows with alpha up to alpha = 2 (1 - Phi(1)) ~ 0.317 and no further
# (the spending function's shape): its p-values are found up to this alpha, and one above it is
# reported as 1 (no verdict is taken at such a level).
MAX_LEVEL = 0.3


def spent(fraction: float, alpha: float) -> float:
    """The alpha an O'Brien-Fleming-type spending function has spent at information
    `fraction` (0 to 1) of a test whose whole level is `alpha`."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if fraction <= 0:
        return 0.0
    if fraction >= 1:
        return float(alpha)
    z = -_NORMAL.inv_cdf(alpha / 2) if alpha < 1 else 0.0
    return math.erfc(z / math.sqrt(fraction) / math.sqrt(2))


def look_level(before: float, fraction: float, alpha: float) -> float:
    """The level a look at information `fraction` is tested at, the previous look being at
    `before`: the alpha spent between the two."""
    return max(0.0, spent(fraction, alpha) - spent(before, alpha))


def _excess(alpha: float, before: float, fraction: float, p: float) -> float:
    return look_level(before, fraction, alpha) - p


def sequential_p(ns: Sequence[int], ps: Sequence[float], n_max: int) -> float:
    """One test's p-value over its looks: the smallest alpha at which a look rejects.

    `ns[l]` and `ps[l]` are the test's seeds and p-value at look l (looks in order, seeds
    never fewer than at the look before); a look whose seeds did not grow tests nothing new
    and is skipped. `n_max` is the most seeds the design could give the test.
    """
    from scipy.optimize import brentq

    if len(ns) != len(ps):
        raise ValueError(f"{len(ns)} seed counts for {len(ps)} p-values")
    if n_max <= 0:
        raise ValueError(f"n_max must be positive, got {n_max}")
    best, before, last_n = 1.0, 0.0, 0
    for n, p in zip(ns, ps, strict=True):
        if n < last_n:
            raise ValueError(f"seed counts must not fall from look to look, got {list(ns)}")
        if n == last_n or not math.isfinite(p):
            continue
        if n > n_max:
            raise ValueError(f"a look has {n} seeds, more than the design's {n_max}")
        fraction = n / n_max
        if before == 0:
            # The first look: spent(fraction, a) = p has a closed form (p itself at every seed).
            z = -_NORMAL.inv_cdf(p / 2) if 0 < p < 1 else (math.inf if p <= 0 else 0.0)
            level_p = p if fraction >= 1 else math.erfc(z * math.sqrt(fraction) / math.sqrt(2))
        elif look_level(before, fraction, MAX_LEVEL) <= p:
            level_p = 1.0
        elif p <= 0:
            level_p = 0.0
        else:
            # The alpha at which this look's level reaches p (the level grows with alpha).
            level_p = float(brentq(_excess, 1e-300, MAX_LEVEL, (before, fraction, p), 1e-15))
        best = min(best, level_p)
        before, last_n = fraction, n
    return best
