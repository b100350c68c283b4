"""The training loop: learning, seeding, stacking, divergence, metrics records."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import settings

from optreg.metrics import MetricsError, read_run, validate_record
from optreg.models import StackedMLP
from optreg.train import run_job, train_seeds

CPU = torch.device("cpu")


def test_a_few_epochs_reduce_the_loss(digits):
    (result,) = train_seeds(digits, settings(epochs=5), [0], CPU)
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert result["final"]["test_accuracy"] > 0.8


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

    real = train_mod.StackedMLP

    class Exploding(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                self.weights[0][1].mul_(1e38)

    monkeypatch.setattr(train_mod, "StackedMLP", Exploding)
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


def test_run_job_writes_valid_records(digits_file, tmp_path):
    paths = run_job(
        data_path=digits_file,
        out_dir=tmp_path / "runs",
        study="s",
        combination="optimizer-adam",
        factors={"optimizer": "adam"},
        settings=settings(epochs=2),
        seeds=[0, 1],
    )
    assert [p.name for p in paths] == ["seed-0.json", "seed-1.json"]
    record = read_run(paths[1])
    assert record["seed"] == 1 and len(record["history"]) == 2
    assert record["provenance"]["stacked_seeds"] == 2
    assert record["provenance"]["torch_threads"] == 1
    assert len(record["provenance"]["settings_hash"]) == 64


def test_schema_rejects_malformed_records(digits_file, tmp_path):
    (path,) = run_job(
        data_path=digits_file,
        out_dir=tmp_path,
        study="s",
        combination="c",
        factors={},
        settings=settings(epochs=1),
        seeds=[0],
    )
    good = json.loads(path.read_text())
    validate_record(good)
    breakages = [
        lambda r: r.pop("diverged"),
        lambda r: r["final"].update(test_accuracy=1.5),
        lambda r: r["history"][0].update(val_loss=-1),
        lambda r: r.update(diverged_epoch=2),  # not diverged but has an epoch
        lambda r: r["provenance"].update(settings_hash="xyz"),
        lambda r: r.update(extra=1),
        lambda r: r["final"].update(test_accuracy=None),  # only diverged runs lack finals
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
