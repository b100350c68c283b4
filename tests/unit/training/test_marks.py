"""Budget marks (a run's test accuracy at earlier epochs too) and training-set subsets."""

from __future__ import annotations

import pytest
import torch
from conftest import settings

from optreg.data.errors import DataError
from optreg.data.prepared import train_subset
from optreg.training.loop import train_runs

CPU = torch.device("cpu")


def test_a_mark_reads_the_run_a_shorter_budget_trains(digits):
    """At a constant rate, the run at mark 2 of 4 epochs is the 2-epoch run."""
    long = train_runs(digits, settings(epochs=4, marks=[2]), [0.01, 0.03], [0, 1], CPU)
    short = train_runs(digits, settings(epochs=2), [0.01, 0.03], [0, 1], CPU)
    for whole, cut in zip(long, short, strict=True):
        at_two = whole["history"][1]
        assert at_two["test_accuracy"] == pytest.approx(cut["final"]["test_accuracy"])
        assert at_two["test_loss"] == pytest.approx(cut["final"]["test_loss"], rel=1e-6)
        assert at_two["val_loss"] == pytest.approx(cut["final"]["val_loss"], rel=1e-6)
        # the test split is read at the marks and at the end only
        tested = [h["epoch"] for h in whole["history"] if "test_accuracy" in h]
        assert tested == [2, 4]
        assert whole["history"][-1]["test_accuracy"] == whole["final"]["test_accuracy"]


def test_marks_do_not_change_the_training(digits):
    marked = train_runs(digits, settings(epochs=3, marks=[1, 2]), [0.01], [0], CPU)
    plain = train_runs(digits, settings(epochs=3), [0.01], [0], CPU)
    assert marked[0]["final"] == plain[0]["final"]


def test_a_training_subset_is_stratified_fixed_and_leaves_the_other_splits(digits):
    sub = train_subset(digits, 300, seed=0)
    assert len(sub.y["train"]) == 300 == len(sub.x["train"])
    assert torch.equal(sub.x["test"], digits.x["test"])
    assert torch.equal(sub.y["val"], digits.y["val"])
    full = torch.bincount(digits.y["train"], minlength=10).double()
    part = torch.bincount(sub.y["train"], minlength=10).double()
    # each class keeps its share, to within one sample (largest remainders)
    assert (part - full * 300 / len(digits.y["train"])).abs().max() < 1
    again = train_subset(digits, 300, seed=0)
    assert torch.equal(again.x["train"], sub.x["train"])
    other = train_subset(digits, 300, seed=1)
    assert not torch.equal(other.x["train"], sub.x["train"])
    assert train_subset(digits, None, seed=0) is digits


def test_a_subset_larger_than_the_training_split_names_both_sizes(digits):
    n = len(digits.y["train"])
    with pytest.raises(DataError, match=f"train_size {n + 1} is more than the {n} samples"):
        train_subset(digits, n + 1, seed=0)
