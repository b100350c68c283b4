"""The catalogue of figures: which factors each needs, which tables it reads, its caption.

Kept free of plotting imports so the workflow can plan figures cheaply when it
parses; the drawing code is in `optreg.report.plots`. Every figure reads the study's
tables (`optreg.analysis.tables`): `tuning` (one row per cell and grid rate, over the
tuning seeds), `summary` (one row per cell and protocol, over the evaluation
seeds), `history` (one row per run and epoch), `runs` (one row per run) and
`pairs` (paired comparisons of cells).

Captions are plain sentences: the workflow's report renders them as
reStructuredText and the PDF report as text, so they use no markup.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FigureSpec:
    """A figure: the factors it needs, the tables it reads, its title and caption."""

    requires: frozenset[str]
    inputs: tuple[str, ...]
    title: str
    caption: str
    # Fewest factors the study must have (a figure over cells needs cells to compare).
    min_factors: int = 0

    def applies(self, factors) -> bool:
        factors = list(factors)
        return self.requires <= set(factors) and len(factors) >= self.min_factors


_CI = "95% percentile-bootstrap interval over the evaluation seeds"


FIGURES: dict[str, FigureSpec] = {
    "test_accuracy_heatmap": FigureSpec(
        frozenset({"optimizer", "activation"}),
        ("summary",),
        "Test accuracy by optimizer and activation",
        "Mean test accuracy over the evaluation seeds for each optimizer and activation, "
        "left at the learning rate tuned on validation accuracy, right at the optimizer's "
        f"customary default rate; the value after ± is the half-width of the {_CI}, lr is the "
        "rate used, and an asterisk after it marks a tuned rate on the edge of the grid. "
        "Both panels share one colour scale.",
    ),
    "protocols": FigureSpec(
        frozenset(),
        ("summary",),
        "Tuned against default learning rate",
        "Mean test accuracy of each cell over the evaluation seeds with its "
        f"{_CI}, at the learning rate tuned on validation accuracy (filled) and at the "
        "optimizer's customary default rate, the original single-setting protocol (open); "
        "cells are sorted by their tuned accuracy, and the column on the right gives the two "
        "rates (an asterisk marks a tuned rate on the edge of the grid).",
        min_factors=1,
    ),
    "lr_sensitivity": FigureSpec(
        frozenset(),
        ("tuning",),
        "Validation accuracy across the learning-rate grid",
        "Mean final validation accuracy over the tuning seeds against the learning rate, with "
        "its 95% percentile-bootstrap interval as a band. Below the curves, one row per curve: "
        "a star marks the rate the cell selected and a cross each rate at which at least one "
        "tuning seed diverged (such a rate is never selected).",
        min_factors=1,
    ),
    "learning_curves": FigureSpec(
        frozenset({"optimizer", "activation"}),
        ("history",),
        "Learning curves at the tuned learning rate",
        "Validation accuracy per epoch of the evaluation runs at each cell's tuned learning "
        "rate: the mean over the evaluation seeds as a line and their range (minimum to "
        "maximum) as a band; the epoch axis is logarithmic, to show the first epochs.",
    ),
    "accuracy_vs_strength": FigureSpec(
        frozenset({"penalty", "strength"}),
        ("summary",),
        "Test accuracy against penalty strength",
        "Mean test accuracy over the evaluation seeds against the penalty strength, each cell "
        f"at its tuned learning rate, with the {_CI} as error bars; the dashed line and "
        "grey band are the unpenalized model's mean and interval.",
    ),
    "sparsity_vs_strength": FigureSpec(
        frozenset({"penalty", "strength"}),
        ("summary",),
        "Sparsity of the trained weights against penalty strength",
        "Share of weights that are exactly zero (left) and of magnitude below 1e-3 (right) "
        "after training, mean over the evaluation seeds at each cell's tuned learning rate, "
        "against the penalty strength; the dashed line is the unpenalized model. Only a "
        "proximal step sets weights exactly to zero; a subgradient penalty leaves them "
        "hovering near it.",
    ),
    "time_to_target": FigureSpec(
        frozenset(),
        ("summary",),
        "Epochs to reach the target validation accuracy",
        "First epoch at which the validation accuracy reaches the study's target, mean over "
        "the evaluation seeds that reached it, at each cell's tuned learning rate, with the "
        f"{_CI} as error bars; the text gives how many seeds reached the target, and hatched "
        "bars mark cells where none did. A mean over fewer seeds is over the faster ones.",
        min_factors=1,
    ),
    "performance_profile": FigureSpec(
        frozenset({"problem", "optimizer"}),
        ("summary",),
        "Performance profile of the optimizers across problems",
        "For each optimizer, the share of problems on which its mean test accuracy (at its "
        "tuned learning rate) is within a gap τ of the best optimizer on that problem, "
        "as τ grows; a curve that rises early belongs to an optimizer that is rarely far "
        "behind. The legend gives each optimizer's mean rank over the problems (1 is best).",
    ),
    "activation_gap_vs_depth": FigureSpec(
        frozenset({"optimizer", "activation", "depth"}),
        ("runs", "pairs"),
        "What depth does to the activations",
        "Test accuracy of ReLU minus that of each other activation, per optimizer, against the "
        "number of hidden layers, each cell at its tuned learning rate: the mean of the paired "
        "differences over the evaluation seeds with its 95% t-interval. A filled point differs "
        "after Holm correction over every pair of the study's cells; an open one is within "
        "noise. Above zero, ReLU is more accurate.",
    ),
}


def figures_for(factors) -> list[str]:
    """Names of the figures a study with these factors can draw, in catalogue order."""
    return [name for name, spec in FIGURES.items() if spec.applies(factors)]
