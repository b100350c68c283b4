"""The training loop: learning, seeding, stacking, divergence, metrics records."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import settings

from optreg.metrics import MetricsError, read_run, validate_record
from optreg.models import StackedMLP
from optreg.train import run_job, train_runs, train_seeds

CPU = torch.device("cpu")


def test_a_few_epochs_reduce_the_loss(digits):
    (result,) = train_seeds(digits, settings(epochs=5), [0], CPU)
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert result["final"]["test_accuracy"] > 0.8


def test_cnn_learns_and_stacks_like_one_at_a_time(digits):
    cfg = settings(model={"model": "cnn", "channels": [4, 8]}, epochs=2)
    stacked = train_seeds(digits, cfg, [0, 1], CPU)
    (alone,) = train_seeds(digits, cfg, [1], CPU)
    assert stacked[0]["final"]["test_accuracy"] > 0.5
    assert alone["final"]["val_loss"] == pytest.approx(stacked[1]["final"]["val_loss"], rel=1e-5)


def test_runs_at_different_rates_in_one_stack_equal_separate_runs(digits):
    lrs, seeds = [0.001, 0.1, 0.001], [0, 0, 1]
    together = train_runs(digits, settings(optimizer="momentum"), lrs, seeds, CPU)
    for lr, seed, result in zip(lrs, seeds, together, strict=True):
        (alone,) = train_runs(digits, settings(optimizer="momentum"), [lr], [seed], CPU)
        assert alone["final"]["val_loss"] == pytest.approx(result["final"]["val_loss"], rel=1e-5)
    assert together[0]["final"]["val_loss"] != together[1]["final"]["val_loss"]


def test_initialization_depends_on_seed_not_on_stack_mates():
    alone = StackedMLP(4, [3], 2, "tanh", seeds=[7])
    stacked = StackedMLP(4, [3], 2, "tanh", seeds=[1, 7, 9])
    for a, b in zip(alone.weights, stacked.weights, strict=True):
        assert torch.equal(a[0], b[1])
        assert not torch.equal(b[0], b[1])


@pytest.mark.parametrize(
    ("optimizer", "penalty"),
    [("adam", "l1"), ("momentum", "l2"), ("rmsprop", "none"), ("sgd", "none")],
)
def test_stacked_seeds_equal_one_at_a_time(digits, optimizer, penalty):
    cfg = settings(
        optimizer=optimizer, lr=0.01, penalty=penalty, strength=1e-4 if penalty != "none" else 0.0
    )
    stacked = train_seeds(digits, cfg, [0, 1, 2], CPU)
    for seed, together in zip([0, 1, 2], stacked, strict=True):
        (alone,) = train_seeds(digits, cfg, [seed], CPU)
        for a, b in zip(alone["history"], together["history"], strict=True):
            for key in ("train_loss", "val_loss", "val_accuracy"):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6)
        assert alone["final"]["test_accuracy"] == pytest.approx(
            together["final"]["test_accuracy"], abs=1e-6
        )
        assert alone["weights"]["l2_norm"] == pytest.approx(
            together["weights"]["l2_norm"], rel=1e-5
        )


def test_same_seed_same_numbers(digits):
    a = train_seeds(digits, settings(), [3], CPU)[0]
    b = train_seeds(digits, settings(), [3], CPU)[0]
    strip = lambda r: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in r["history"]]  # noqa: E731
    assert strip(a) == strip(b) and a["final"] == b["final"]


def test_divergence_is_recorded_and_the_other_seeds_go_on(digits, monkeypatch):
    # Blow up seed 1 only: scale its first-layer weights to overflow float32 after one epoch.
    import optreg.train as train_mod

    real = train_mod.build_model

    def exploding(*args, **kwargs):
        model = real(*args, **kwargs)
        with torch.no_grad():
            model.weights[0][1].mul_(1e38)
        return model

    monkeypatch.setattr(train_mod, "build_model", exploding)
    results = train_seeds(digits, settings(epochs=3), [0, 1, 2], CPU)
    assert [r["diverged"] for r in results] == [False, True, False]
    assert results[1]["diverged_epoch"] == 1
    assert results[1]["final"]["test_accuracy"] is None
    assert len(results[0]["history"]) == 3
    monkeypatch.undo()
    (alone,) = train_seeds(digits, settings(epochs=3), [2], CPU)
    assert alone["final"]["test_accuracy"] == pytest.approx(
        results[2]["final"]["test_accuracy"], abs=1e-6
    )


def test_huge_learning_rate_diverges_instead_of_crashing(digits):
    results = train_seeds(digits, settings(optimizer="sgd", lr=1e6, epochs=3), [0, 1], CPU)
    assert all(r["diverged"] for r in results)


def tune_and_evaluate(digits_file, out):
    common = dict(
        data_path=digits_file,
        study="s",
        combination="optimizer-adam",
        factors={"optimizer": "adam"},
        settings=settings(epochs=2),
        lr_grid=[0.001, 0.03],
        default_lr=0.001,
    )
    tuning = run_job(out_dir=out / "tune", phase="tune", seeds=[0, 1], **common)
    evaluation = run_job(
        out_dir=out / "eval", phase="eval", seeds=[5, 6], tuning_files=tuning, **common
    )
    return tuning, evaluation


def test_tune_and_eval_jobs_write_valid_records(digits_file, tmp_path):
    tuning, evaluation = tune_and_evaluate(digits_file, tmp_path)
    assert sorted(p.name for p in tuning) == [
        "lr-0.001_seed-0.json",
        "lr-0.001_seed-1.json",
        "lr-0.03_seed-0.json",
        "lr-0.03_seed-1.json",
    ]
    assert [p.name for p in evaluation] == [
        "tuned_seed-5.json",
        "tuned_seed-6.json",
        "oneshot_seed-5.json",
        "oneshot_seed-6.json",
    ]
    tuned = read_run(evaluation[0])
    assert tuned["phase"] == "eval" and tuned["protocol"] == "tuned"
    assert tuned["selection"]["grid"] == [0.001, 0.03]
    assert tuned["settings"]["lr"] == tuned["selection"]["lr"]
    oneshot = read_run(evaluation[2])
    assert oneshot["settings"]["lr"] == 0.001 and oneshot["selection"] is None
    assert tuned["provenance"]["stacked_seeds"] == 4
    assert read_run(tuning[0])["protocol"] is None
    assert len(tuned["provenance"]["settings_hash"]) == 64


def test_schema_rejects_malformed_records(digits_file, tmp_path):
    _, evaluation = tune_and_evaluate(digits_file, tmp_path)
    path = evaluation[0]
    validate_record(json.loads(path.read_text()))
    breakages = [
        lambda r: r.pop("diverged"),
        lambda r: r["final"].update(test_accuracy=1.5),
        lambda r: r["history"][0].update(val_loss=-1),
        lambda r: r.update(diverged_epoch=2),  # not diverged but has an epoch
        lambda r: r["provenance"].update(settings_hash="xyz"),
        lambda r: r.update(extra=1),
        lambda r: r["final"].update(test_accuracy=None),  # only diverged runs lack finals
        lambda r: r.update(phase="tune"),  # a tuning run has no protocol
        lambda r: r.update(selection=None),  # a tuned run records its selection
        lambda r: r.update(protocol="best"),
    ]
    for breakage in breakages:
        bad = json.loads(path.read_text())
        breakage(bad)
        with pytest.raises(MetricsError):
            validate_record(bad)


def test_reading_a_corrupt_file_names_it(tmp_path):
    bad = tmp_path / "seed-0.json"
    bad.write_text('{"schema_version": 1, ')
    with pytest.raises(MetricsError, match="seed-0.json"):
        read_run(bad)
    with pytest.raises(MetricsError, match="missing"):
        read_run(tmp_path / "nope.json")
