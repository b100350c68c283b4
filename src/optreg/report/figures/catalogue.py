"""The catalogue of figures: for each, the factors it needs, the tables it reads, its title,
its caption and the function that draws it.

A figure enters the catalogue through `figure`, the decorator on its drawing function, when
its module is imported (`optreg.report.figures` imports the built-in ones). This module and
the figures' modules import no plotting library at module level: the workflow reads the
catalogue when it parses, to plan a study's figures. Every figure reads the study's tables
(`optreg.analysis.tables`): `tuning` (one row per cell and grid rate, over the tuning seeds),
`summary` (one row per cell and protocol, over the evaluation seeds), `history` (one row per
run and epoch), `runs` (one row per run) and `pairs` (paired comparisons of cells).

Captions are plain sentences: the workflow's HTML report renders them as reStructuredText
and the PDF report as text, so they use no markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# The tables a figure can read, as `make_figure` receives them.
TABLES = ("summary", "tuning", "history", "runs", "pairs")

# A figure's drawing function: (tables by name, the study's factors, the preferred order of
# each factor's values or None, the figure's own spec) -> the drawn Figure.
Draw = Callable[[dict[str, Any], list[str], Any, "FigureSpec"], Any]


@dataclass(frozen=True)
class FigureSpec:
    """A figure: its name, the factors it needs, the tables it reads, its title and caption,
    and the function that draws it."""

    name: str
    requires: frozenset[str]
    inputs: tuple[str, ...]
    title: str
    caption: str
    draw: Draw
    # Fewest factors the study must have (a figure over cells needs cells to compare).
    min_factors: int = 0
    # What the study must do with the learning rate (`RATE_TRAITS`).
    needs: frozenset[str] = frozenset()

    def applies(self, factors, traits=None) -> bool:
        """Whether a study with these factors (and these `RATE_TRAITS`; all when None) can
        draw the figure."""
        factors = list(factors)
        traits = RATE_TRAITS if traits is None else frozenset(traits)
        return (
            self.requires <= set(factors)
            and len(factors) >= self.min_factors
            and self.needs <= traits
        )


# What a study does with the learning rate, beyond its factors
# (`optreg.study.matrix.rate_traits`): "grid", some cell's grid has several rates (a figure
# across the grid needs them); "choice", some cell's rate can differ from its optimizer's
# default rate (a figure of tuned against default rates needs that).
RATE_TRAITS = frozenset({"grid", "choice"})


# Name -> figure, in the order the figures registered: the order of `figures_for`, of the
# workflow's targets and of the report's pages.
FIGURES: dict[str, FigureSpec] = {}


def figure(
    name: str,
    *,
    inputs: Iterable[str],
    title: str,
    caption: str,
    requires: Iterable[str] = (),
    min_factors: int = 0,
    needs: Iterable[str] = (),
) -> Callable[[Draw], Draw]:
    """Enter the decorated drawing function into FIGURES as figure `name`, with its spec."""
    inputs, needs = tuple(inputs), frozenset(needs)
    if not inputs or not set(inputs) <= set(TABLES):
        raise ValueError(f"figure {name!r} reads tables {inputs}: name some of {TABLES}")
    if not needs <= RATE_TRAITS:
        known = sorted(RATE_TRAITS)
        raise ValueError(f"figure {name!r} needs {sorted(needs)}: name some of {known}")

    def register(draw: Draw) -> Draw:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} is already in the catalogue")
        FIGURES[name] = FigureSpec(
            name, frozenset(requires), inputs, title, caption, draw, min_factors, needs
        )
        return draw

    return register


def figures_for(factors, traits=None) -> list[str]:
    """Names of the figures a study with these factors (and these `RATE_TRAITS`; all when
    None) can draw, in catalogue order."""
    return [name for name, spec in FIGURES.items() if spec.applies(factors, traits)]
