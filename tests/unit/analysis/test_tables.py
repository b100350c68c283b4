"""Learning-rate selection, time to target and the study tables, on synthetic records."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from optreg.analysis.stats import mean_ci
from optreg.analysis.tables import (
    problem_targets,
    summary_table,
    target_accuracy,
    time_to_target,
    tuning_table,
)
from optreg.training.protocol import (
    choose_value,
    plan_runs,
    protocols,
    select_lr,
    selections,
    small_grid,
    tuning_sets,
)


def record(lr, seed, val, diverged=False, val_loss=0.5):
    return {
        "combination": "c",
        "seed": seed,
        "settings": {"lr": lr},
        "diverged": diverged,
        "final": {
            "val_accuracy": None if diverged else val,
            "val_loss": None if diverged else val_loss,
            "test_accuracy": None,
        },
    }


def test_selection_uses_validation_only():
    # The records carry no test accuracy at all: the choice cannot depend on it.
    tuning = [record(0.1, s, 0.80) for s in (0, 1)] + [record(0.01, s, 0.90) for s in (0, 1)]
    tuning += [record(0.001, s, 0.70) for s in (0, 1)]
    choice = select_lr(tuning)
    assert choice["lr"] == 0.01 and not choice["on_grid_edge"]
    assert choice["grid"] == [0.001, 0.01, 0.1]
    assert choice["val_accuracy_mean"] == pytest.approx([0.70, 0.90, 0.80])


def test_selection_never_picks_a_rate_where_a_seed_diverged_and_flags_the_edge():
    tuning = [record(1.0, 0, 0.99), record(1.0, 1, None, diverged=True)]
    tuning += [record(0.1, s, 0.90) for s in (0, 1)] + [record(0.01, s, 0.95) for s in (0, 1)]
    choice = select_lr(tuning)
    assert choice["lr"] == 0.01 and choice["on_grid_edge"]
    assert choice["diverged"] == [0, 0, 1]


def test_selection_ties_go_to_the_lower_validation_loss():
    # Every rate at validation accuracy 1.0 (saturated): the smallest rate, which ties went
    # to, has the worst loss of the grid; the choice is the rate of the lowest loss.
    losses = {1e-4: 0.9, 1e-3: 0.3, 1e-2: 0.05, 1e-1: 0.2}
    tuning = [record(lr, s, 1.0, val_loss=v + s / 100) for lr, v in losses.items() for s in (0, 1)]
    choice = select_lr(tuning)
    assert choice["lr"] == 1e-2 and not choice["on_grid_edge"]
    assert choice["val_loss_mean"] == pytest.approx([0.905, 0.305, 0.055, 0.205])


def test_ties_on_accuracy_and_loss_go_to_the_middle_of_the_grid_then_the_smaller_value():
    grid = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
    flat = dict.fromkeys(grid, 0.9)
    assert choose_value(flat, dict.fromkeys(grid, 0.2), grid) == 1e-3
    assert choose_value(flat, {**dict.fromkeys(grid, 0.2), 0.0: 0.1}, grid) == 0.0
    # Equally far from the middle: the smaller one; a missing loss ranks last.
    even = [1e-3, 1e-2, 1e-1, 1.0]
    assert choose_value(dict.fromkeys(even, 1.0), dict.fromkeys(even, 0.1), even) == 1e-2
    assert choose_value({1e-2: 1.0, 1e-1: 1.0}, {1e-2: None, 1e-1: 0.3}, even) == 1e-1
    # Accuracy first, whatever the losses.
    assert choose_value({1e-2: 0.9, 1e-1: 0.95}, {1e-2: 0.01, 1e-1: 0.5}, even) == 1e-1


def test_every_rate_diverged_is_an_error_naming_the_cell():
    with pytest.raises(ValueError, match="c: every learning rate"):
        select_lr([record(0.1, 0, None, diverged=True)])


def test_plan_runs():
    runs = plan_runs("tune", [1, 0], [0.1, 0.01], 0.001)
    assert [(r.lr, r.seed) for r in runs] == [(0.01, 0), (0.1, 0), (0.01, 1), (0.1, 1)]
    assert runs[0].filename == "lr-0.01_seed-0.json"
    tuning = [record(0.1, 0, 0.5), record(0.01, 0, 0.9)]
    chosen = selections(tuning, [0.1, 0.01], 0.001)
    assert list(chosen) == ["tuned"]  # two rates: the small grid would be the whole grid
    runs = plan_runs("eval", [7], [0.1, 0.01], 0.001, chosen)
    assert [(r.lr, r.protocol) for r in runs] == [(0.01, "tuned"), (0.001, "oneshot")]
    assert runs[1].filename == "oneshot_seed-7.json"


GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]


def test_the_protocols_of_a_cell_follow_its_grid_and_retuning_seeds():
    assert protocols([0.01], 0.01, retuning_seeds=[3]) == ("tuned", "oneshot")  # nothing to choose
    assert protocols([0.01, 0.1], 0.01) == ("tuned", "oneshot")  # small grid = the grid
    assert protocols(GRID, 0.01) == ("tuned", "oneshot", "small")
    assert protocols(GRID, 0.01, [3, 4]) == ("tuned", "oneshot", "small", "retuned")


def test_the_small_grid_is_the_grid_rate_nearest_the_default_and_its_neighbours():
    assert small_grid(GRID, 0.01) == [0.003, 0.01, 0.03]
    assert small_grid(GRID, 0.001) == [0.001, 0.003]  # on the edge: one neighbour
    assert small_grid(GRID, 5.0) == [0.3, 1.0]  # beyond the grid: its nearest end
    assert small_grid(GRID, 0.02) == [0.01, 0.03, 0.1]  # off the grid: nearest on a log scale


def test_each_protocol_chooses_on_its_own_seeds_and_rates():
    # Tuning seeds 0, 1 prefer 0.1; retuning seeds 3, 4 prefer 0.3; near the default (0.01)
    # the best rate is 0.03.
    best = {0: 0.1, 1: 0.1, 3: 0.3, 4: 0.3}

    def val(lr, seed):
        return 1 / (1 + abs(math.log10(lr / best[seed])))

    tuning = [record(lr, s, val(lr, s)) for s in best for lr in GRID]
    chosen = selections(tuning, GRID, 0.01, retuning_seeds=[3, 4])
    assert {p: c["lr"] for p, c in chosen.items()} == {"tuned": 0.1, "retuned": 0.3, "small": 0.03}
    assert chosen["tuned"]["tuning_seeds"] == [0, 1]
    assert chosen["retuned"]["tuning_seeds"] == [3, 4]
    assert chosen["small"]["grid"] == [0.003, 0.01, 0.03] and chosen["small"]["on_grid_edge"]
    assert set(tuning_sets(tuning, [3, 4])) == {"tuned", "retuned"}
    runs = plan_runs("eval", [7], GRID, 0.01, chosen, retuning_seeds=[3, 4])
    assert [(r.protocol, r.lr) for r in runs] == [
        ("tuned", 0.1),
        ("oneshot", 0.01),
        ("small", 0.03),
        ("retuned", 0.3),
    ]


def test_next_rate_steps_past_the_edge_by_the_grids_own_step_within_the_limits():
    from optreg.training.protocol import next_rate

    grid = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    top = {"grid": grid, "lr": 1.0}
    assert next_rate(top, (1e-5, 10)) == pytest.approx(3.33)  # 1.0 * (1.0 / 0.3)
    assert next_rate(top, (1e-5, 3.0)) is None  # the limit stops it
    assert next_rate({"grid": grid, "lr": 0.003}, (1e-5, 10)) == pytest.approx(0.0009)
    assert next_rate({"grid": grid, "lr": 0.1}, (1e-5, 10)) is None  # interior
    assert next_rate({"grid": [0.1], "lr": 0.1}, (1e-5, 10)) is None  # no step to take


def test_extend_grid_stops_when_the_best_is_interior_or_a_rate_diverges():
    from optreg.training.protocol import extend_grid

    # Validation accuracy peaks at 3: the grid [0.01, 0.1] grows by its step (x10) to 1,
    # then to 10, which is worse than 1: the best is interior and the search stops.
    def train(lr):
        return [record(lr, s, 1 / (1 + abs(math.log10(lr / 3)))) for s in (0, 1)]

    tuning, added = extend_grid(train(0.01) + train(0.1), (1e-5, 100), train)
    assert added == pytest.approx([1.0, 10.0])
    assert select_lr(tuning)["lr"] == 1.0 and not select_lr(tuning)["on_grid_edge"]
    # The limit stops it earlier; the selection stays on the edge.
    tuning, added = extend_grid(train(0.01) + train(0.1), (1e-5, 5), train)
    assert added == pytest.approx([1.0]) and select_lr(tuning)["on_grid_edge"]
    # A rate that diverges beyond the edge makes the old edge interior: the search stops.
    diverging = [record(0.01, 0, 0.5), record(0.1, 0, 0.9)]
    _, added = extend_grid(diverging, (1e-5, 10), lambda lr: [record(lr, 0, None, True)])
    assert added == [1.0]


def test_mean_ci_still_matches_the_t_interval():
    from scipy import stats

    x = [0.91, 0.93, 0.95, 0.9, 0.94]
    out = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=sum(x) / 5, scale=stats.sem(x))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((lo, hi))


def history(rows):
    cols = ["combination", "phase", "protocol", "seed", "lr", "epoch", "val_accuracy"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["elapsed_s"] = frame["epoch"] * 2.0
    frame["stacked_runs"] = 4
    return frame


def test_time_to_target_is_the_first_epoch_reaching_it():
    h = history(
        [("c", "eval", "tuned", 0, 0.1, e, v) for e, v in [(1, 0.5), (2, 0.96), (3, 0.94)]]
        + [("c", "eval", "tuned", 1, 0.1, e, v) for e, v in [(1, 0.5), (2, 0.6), (3, 0.7)]]
    )
    out = time_to_target(h, 0.95).set_index("seed")
    assert out.loc[0, "epochs_to_target"] == 2 and out.loc[0, "seconds_to_target"] == 1.0
    assert 1 not in out.index  # never reached


def test_time_to_target_takes_each_problems_own_target():
    h = history(
        [("c", "eval", "tuned", 0, 0.1, e, v) for e, v in [(1, 0.6), (2, 0.7), (3, 0.85)]]
        + [("d", "eval", "tuned", 0, 0.1, e, v) for e, v in [(1, 0.6), (2, 0.7), (3, 0.85)]]
    )
    h["problem"] = h["combination"].map({"c": "digits_mlp", "d": "cancer_mlp"})
    out = time_to_target(h, {"digits_mlp": 0.55, "cancer_mlp": 0.81}).set_index("combination")
    assert out.loc["c", "epochs_to_target"] == 1 and out.loc["d", "epochs_to_target"] == 3
    with pytest.raises(ValueError, match="cancer_mlp"):
        time_to_target(h, {"digits_mlp": 0.55})


def test_a_problems_target_is_never_met_by_predicting_the_majority_class():
    # Breast cancer's validation split: 71 of 114 benign (0.623), above the default 0.5.
    metas = [
        {"dataset": "breast_cancer", "class_counts": {"val": [43, 71], "test": [42, 72]}},
        {"dataset": "digits", "class_counts": {"val": [36] * 9 + [37], "test": [36] * 10}},
    ]
    datasets = {"cancer_mlp": "breast_cancer", "digits_mlp": "digits", "digits_cnn": "digits"}
    table = problem_targets(0.5, datasets, metas)
    assert list(table.index) == ["cancer_mlp", "digits_mlp", "digits_cnn"]
    cancer = table.loc["cancer_mlp"]
    assert cancer["val_majority_rate"] == pytest.approx(71 / 114)
    assert cancer["test_majority_rate"] == pytest.approx(72 / 114)
    # Halfway from the majority-class rate to perfect accuracy.
    assert cancer["target_val_accuracy"] == pytest.approx((1 + 71 / 114) / 2)
    assert (table["target_val_accuracy"] > table["val_majority_rate"]).all()
    # A configured target above that stays as it is.
    assert table.loc["digits_mlp", "target_val_accuracy"] == pytest.approx((1 + 37 / 361) / 2)
    assert problem_targets(0.9, datasets, metas)["target_val_accuracy"].tolist()[1:] == [0.9, 0.9]
    assert target_accuracy(0.5, 0.1) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="mnist1d"):
        problem_targets(0.5, {"mnist1d_mlp": "mnist1d"}, metas)


def test_a_studys_own_target_is_kept_above_the_majority_class_rate_only():
    metas = [
        {"dataset": "breast_cancer", "class_counts": {"val": [43, 71], "test": [42, 72]}},
        {"dataset": "digits", "class_counts": {"val": [36] * 9 + [37], "test": [36] * 10}},
    ]
    datasets = {"cancer_mlp": "breast_cancer", "digits_mlp": "digits"}
    table = problem_targets(0.4, datasets, metas, as_given=True)
    # Digits (majority 0.10): 0.4 as given, below the protocol rule's halfway mark (0.55).
    assert table.loc["digits_mlp", "target_val_accuracy"] == pytest.approx(0.4)
    assert problem_targets(0.4, datasets, metas).loc["digits_mlp", "target_val_accuracy"] > 0.55
    # Breast cancer (majority 0.62): 0.4 would be met by always saying "benign": halfway.
    assert table.loc["cancer_mlp", "target_val_accuracy"] == pytest.approx((1 + 71 / 114) / 2)
    assert target_accuracy(0.7, 71 / 114, as_given=True) == pytest.approx(0.7)


def runs_frame():
    rows = []
    for protocol, lr, accs in (("tuned", 0.01, [0.9, 0.92, 0.94]), ("oneshot", 0.001, [0.5] * 3)):
        for seed, acc in enumerate(accs):
            rows.append(
                {
                    "combination": "optimizer-adam",
                    "optimizer": "adam",
                    "phase": "eval",
                    "protocol": protocol,
                    "seed": seed,
                    "lr": lr,
                    "diverged": False,
                    "lr_on_grid_edge": False if protocol == "tuned" else None,
                    "test_accuracy": acc,
                    "val_accuracy": acc,
                    **{
                        m: 0.0
                        for m in (
                            "train_accuracy",
                            "test_loss",
                            "val_loss",
                            "train_loss",
                            "l1_norm",
                            "l2_norm",
                            "near_zero_fraction",
                            "zero_fraction",
                        )
                    },
                }
            )
    for lr, val in ((0.01, 0.9), (0.001, 0.8)):
        for seed in (10, 11):
            rows.append(
                {
                    "combination": "optimizer-adam",
                    "optimizer": "adam",
                    "phase": "tune",
                    "protocol": None,
                    "seed": seed,
                    "lr": lr,
                    "diverged": False,
                    "val_accuracy": val,
                    "val_loss": 0.1,
                    "train_loss": 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_summary_has_one_row_per_cell_and_protocol_with_t_intervals():
    runs = runs_frame()
    reached = pd.DataFrame(
        {
            "combination": ["optimizer-adam"],
            "phase": ["eval"],
            "protocol": ["tuned"],
            "seed": [0],
            "lr": [0.01],
            "epochs_to_target": [3.0],
            "seconds_to_target": [1.5],
        }
    )
    summary = summary_table(runs, ["optimizer"], reached).set_index("protocol")
    assert summary.loc["tuned", "test_accuracy_mean"] == pytest.approx(0.92)
    # The Student-t interval of the mean: 0.92 ± t(0.975, 2) · 0.02 / sqrt(3).
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert summary.loc["tuned", "test_accuracy_ci_low"] == pytest.approx(0.92 - half)
    assert summary.loc["tuned", "test_accuracy_ci_high"] == pytest.approx(0.92 + half)
    assert (
        summary.loc["tuned", "reached_target"] == 1
        and summary.loc["oneshot", "reached_target"] == 0
    )
    assert math.isnan(summary.loc["oneshot", "epochs_to_target_mean"])
    tuning = tuning_table(runs, ["optimizer"]).set_index("lr")
    assert tuning.loc[0.01, "selected"] and not tuning.loc[0.001, "selected"]
    assert tuning.loc[0.01, "val_accuracy_mean"] == pytest.approx(0.9)


def test_published_accuracy_stands_beside_the_measured_one():
    from optreg.report.pdf import published_rows

    summary = pd.DataFrame(
        {
            "problem": ["cnn", "cnn", "mlp"],
            "protocol": ["tuned", "oneshot", "tuned"],
            "test_accuracy_mean": [0.925, 0.5, 0.66],
            "test_accuracy_ci_low": [0.92, 0.4, 0.65],
            "test_accuracy_ci_high": [0.93, 0.6, 0.67],
            "seeds": [10, 10, 10],
        }
    )
    problems = {"cnn": {"published_test_accuracy": 0.94}, "mlp": {}, "gone": {}}
    (row,) = published_rows(summary, problems)  # the tuned rate, problems with a figure only
    assert row == {
        "problem": "cnn",
        "published": "94%",
        "ours": "92.5% [92.0, 93.0]",
        "difference": "-1.5",
        "seeds": 10,
    }
