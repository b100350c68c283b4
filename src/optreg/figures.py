"""The catalogue of figures: which factors each needs, which tables it reads, its caption.

Kept free of plotting imports so the workflow can plan figures cheaply;
the drawing code is in `optreg.plots`.
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
    # Fewest factors the study must have (lr_sensitivity needs lr and something to compare).
    min_factors: int = 0

    def applies(self, factors) -> bool:
        factors = list(factors)
        return self.requires <= set(factors) and len(factors) >= self.min_factors


FIGURES: dict[str, FigureSpec] = {
    "test_accuracy_heatmap": FigureSpec(
        frozenset({"optimizer", "activation"}),
        ("selected",),
        "Test accuracy at the selected learning rate",
        "Mean test accuracy over seeds for each optimizer and activation, each at the learning "
        "rate with the best mean validation accuracy; ± is the half-width of the 95% "
        "t-interval over seeds, and * marks a learning rate on the edge of the grid.",
    ),
    "lr_sensitivity": FigureSpec(
        frozenset({"lr"}),
        ("summary",),
        "Validation accuracy across learning rates",
        "Mean validation accuracy over seeds against the learning rate, with the 95% "
        "t-interval as a band; crosses mark learning rates where at least one seed diverged.",
        min_factors=2,
    ),
    "learning_curves": FigureSpec(
        frozenset({"optimizer", "activation", "lr"}),
        ("history", "selected"),
        "Learning curves at the selected learning rate",
        "Validation accuracy per epoch, mean over seeds (band: range over seeds), for each "
        "optimizer and activation at its selected learning rate.",
    ),
    "accuracy_vs_strength": FigureSpec(
        frozenset({"penalty", "strength"}),
        ("summary",),
        "Test accuracy against penalty strength",
        "Mean test accuracy over seeds against the penalty strength for L1 and L2, with 95% "
        "t-intervals; the band is the unpenalized model's mean and interval.",
    ),
    "sparsity_vs_strength": FigureSpec(
        frozenset({"penalty", "strength"}),
        ("summary",),
        "Near-zero weights against penalty strength",
        "Share of weights of magnitude below 1e-3 after training (mean over seeds) against the "
        "penalty strength; the band is the unpenalized model.",
    ),
}


def figures_for(factors) -> list[str]:
    """Names of the figures a study with these factors can draw, in catalogue order."""
    return [name for name, spec in FIGURES.items() if spec.applies(factors)]
