"""Learning-rate schedules: their shapes, and every optimizer trained under them as the
textbook PyTorch loop with `torch.optim.lr_scheduler.LambdaLR` trains it."""

from __future__ import annotations

import io
import math

import pytest
import torch
from conftest import settings

from optreg.training.loop import train_runs, train_stack
from optreg.training.reference import data_order, textbook_epochs, textbook_mlp
from optreg.training.schedules import SCHEDULES, schedule, steps_per_epoch

CPU = torch.device("cpu")


def test_the_shapes_are_the_documented_ones():
    total = 100
    cosine, warm, step = schedule("cosine"), schedule("warmup_cosine"), schedule("step")
    assert [schedule("constant")(s, total) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert cosine(0, total) == 1.0
    assert cosine(50, total) == pytest.approx(0.5)
    assert 0 < cosine(99, total) < 0.001
    assert all(cosine(s + 1, total) < cosine(s, total) for s in range(total - 1))
    # 5 warm-up steps at 1/5 ... 5/5, then cosine over the other 95 from 1
    assert [warm(s, total) for s in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert warm(5 + 95 // 2, total) == pytest.approx(cosine(95 // 2, 95))
    assert [step(s, total) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )


def test_an_unknown_schedule_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown schedule 'linear'.*cosine"):
        schedule("linear")


def _textbook(digits, cfg, seed, plain_optimizer):
    """The run as a textbook loop, the schedule stepped after each step (LambdaLR)."""
    plain = textbook_mlp(seed)
    optimizer = plain_optimizer(plain.parameters())
    total = cfg["epochs"] * steps_per_epoch(len(digits.y["train"]), cfg["batch_size"])
    shape = SCHEDULES[cfg["schedule"]]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: shape(s, total))
    return textbook_epochs(
        plain,
        optimizer,
        digits,
        cfg["epochs"],
        cfg["batch_size"],
        order=data_order(seed),
        penalty=cfg["penalty"],
        strength=cfg["strength"],
        lr=cfg["lr"],
        scheduler=scheduler,
    )


@pytest.mark.parametrize("name", ["cosine", "warmup_cosine", "step"])
@pytest.mark.parametrize(
    ("optimizer", "penalty", "plain"),
    [
        ("momentum", "none", lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
        ("adam", "l1_prox", lambda p: torch.optim.Adam(p, lr=0.02)),
        ("adam", "wd", lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=2 * 0.01)),
    ],
)
def test_a_scheduled_run_is_the_textbook_loop_with_lambda_lr(
    digits, name, optimizer, penalty, plain
):
    strength = 0.01 if penalty != "none" else 0.0
    cfg = settings(
        optimizer=optimizer,
        penalty=penalty,
        strength=strength,
        schedule=name,
        epochs=3,
        lr=0.02,
        model={"model": "mlp", "hidden": [8]},
    )
    (result,), _ = train_stack(digits, cfg, [cfg["lr"]], [4], CPU)
    textbook = _textbook(digits, cfg, 4, plain)
    # The decay factor 1 - 2 lr s: per run in float32 here, a float64 in AdamW; a constant
    # rate differs from AdamW as much (1e-4 after 2 epochs), so rounding, not the schedule.
    rel = 5e-4 if penalty == "wd" else 1e-5
    for ours, theirs in zip(result["history"], textbook, strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=rel)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=rel)
    constant = train_stack(digits, {**cfg, "schedule": "constant"}, [cfg["lr"]], [4], CPU)[0]
    assert constant[0]["final"]["val_loss"] != pytest.approx(result["final"]["val_loss"])


def test_a_torch_optim_optimizer_follows_the_schedule(digits):
    """A user's `torch.optim` class (one run a stack) under cosine: the textbook loop."""
    cfg = settings(
        optimizer="mine",
        optimizer_spec={"class": "torch.optim:SGD", "kwargs": {"momentum": 0.9}},
        schedule="cosine",
        epochs=2,
        lr=0.05,
        model={"model": "mlp", "hidden": [8]},
    )
    (result,), _ = train_stack(digits, cfg, [0.05], [4], CPU)
    textbook = _textbook(digits, cfg, 4, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9))
    for ours, theirs in zip(result["history"], textbook, strict=True):
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)


def test_runs_at_different_rates_keep_their_own_rates_under_a_schedule(digits):
    cfg = settings(optimizer="momentum", schedule="warmup_cosine", epochs=2)
    lrs, seeds = [0.003, 0.1, 0.003], [0, 0, 1]
    together = train_runs(digits, cfg, lrs, seeds, CPU)
    for lr, seed, result in zip(lrs, seeds, together, strict=True):
        (alone,) = train_runs(digits, cfg, [lr], [seed], CPU)
        assert alone["final"]["val_loss"] == pytest.approx(result["final"]["val_loss"], rel=1e-5)


def test_a_run_dropped_from_its_stack_leaves_the_others_on_their_schedule(digits):
    """A diverging run is dropped mid-training; its stack-mates' rates follow the schedule
    as if it had never been there."""
    cfg = settings(optimizer="sgd", schedule="cosine", epochs=3)
    together = train_runs(digits, cfg, [0.05, 1e4], [0, 0], CPU)
    assert together[1]["diverged"]
    (alone,) = train_runs(digits, cfg, [0.05], [0], CPU)
    assert alone["final"]["val_loss"] == pytest.approx(together[0]["final"]["val_loss"], rel=1e-5)


@pytest.mark.parametrize("name", ["cosine", "step"])
def test_a_run_resumed_mid_epoch_continues_on_its_schedule(digits, name):
    cfg = settings(schedule=name, epochs=3, model={"model": "mlp", "hidden": [8]})
    whole = train_stack(digits, cfg, [0.03, 0.01], [1, 2], CPU)[0]
    saved = []

    class Stop(Exception):
        pass

    class Watch:  # a checkpoint at the 30th batch (in epoch 2), then the job is killed
        due, batches = 0.0, 0

        def between_batches(self, epoch, epochs, done, n, snapshot):
            self.batches += 1
            if self.batches == 30:
                buffer = io.BytesIO()
                torch.save(snapshot(), buffer)
                buffer.seek(0)
                saved.append(torch.load(buffer, weights_only=True))
                raise Stop

        def end_epoch(self, *args, **kwargs):
            pass

    with pytest.raises(Stop):
        train_stack(digits, cfg, [0.03, 0.01], [1, 2], CPU, watch=Watch())
    assert saved[0]["epoch"] == 2
    resumed = train_stack(digits, cfg, [0.03, 0.01], [1, 2], CPU, resume=saved[0])[0]
    for a, b in zip(resumed, whole, strict=True):
        assert a["final"] == pytest.approx(b["final"], rel=1e-6)
        assert math.isfinite(a["final"]["val_loss"])
