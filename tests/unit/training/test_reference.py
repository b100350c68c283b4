"""The textbook loop: the torch.optim optimizer of each name, the penalties, a notebook run."""

from __future__ import annotations

import pytest
import torch
from conftest import settings

from optreg.training.reference import (
    PLAIN_OPTIMIZERS,
    plain_model,
    plain_optimizer,
    plain_run,
    textbook_epochs,
)


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


@pytest.mark.parametrize(
    ("name", "penalty", "cls", "group"),
    [
        ("sgd", "none", torch.optim.SGD, {"momentum": 0.0}),
        ("momentum", "none", torch.optim.SGD, {"momentum": 0.9}),
        ("rmsprop", "none", torch.optim.RMSprop, {}),
        ("adam", "none", torch.optim.Adam, {}),
        ("adam", "wd", torch.optim.AdamW, {"weight_decay": 0.02}),
    ],
)
def test_each_known_name_is_its_torch_optim_optimizer(name, penalty, cls, group):
    cfg = settings(optimizer=name, penalty=penalty, strength=0.01)
    optimizer = plain_optimizer(cfg, params(), 0.1)
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["lr"] == 0.1
    for key, value in group.items():
        assert optimizer.param_groups[0][key] == pytest.approx(value)


def test_an_unknown_optimizer_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="'lion'") as caught:
        plain_optimizer(settings(optimizer="lion"), params(), 0.1)
    assert ", ".join(PLAIN_OPTIMIZERS) in str(caught.value)
    assert set(PLAIN_OPTIMIZERS) == {"adam", "momentum", "rmsprop", "sgd"}


def test_an_unknown_penalty_is_refused(digits):
    model = plain_model({"model": "mlp", "hidden": [8]}, digits.meta, "relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="'l3'"):
        textbook_epochs(model, optimizer, digits, 1, 64, penalty="l3")


def test_the_epochs_are_the_loop_s_own_losses(digits):
    """Training loss and accuracy are the epoch's batch means; validation after the epoch."""
    torch.manual_seed(0)
    model = plain_model({"model": "mlp", "hidden": [8]}, digits.meta, "tanh")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = torch.nn.functional.cross_entropy(model(digits.x["val"]), digits.y["val"]).item()
    history = textbook_epochs(model, optimizer, digits, 3, 64)
    assert len(history) == 3
    assert history[-1]["val_loss"] < before
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    with torch.no_grad():
        out = model(digits.x["val"])
    assert history[-1]["val_loss"] == pytest.approx(
        torch.nn.functional.cross_entropy(out, digits.y["val"]).item()
    )
    assert 0.0 < history[-1]["train_accuracy"] <= 1.0


def test_a_proximal_l1_step_zeroes_weights_and_a_plain_run_does_not(digits):
    cfg = settings(optimizer="sgd", epochs=2, model={"model": "mlp", "hidden": [16]})
    zero_fraction = {}
    for penalty in ("none", "l1_prox"):
        run = {**cfg, "penalty": penalty, "strength": 0.5 if penalty != "none" else 0.0}
        torch.manual_seed(1)
        model = plain_model(run["model"], digits.meta, "relu")
        optimizer = plain_optimizer(run, model.parameters(), 0.1)
        textbook_epochs(
            model, optimizer, digits, 2, 64, penalty=penalty, strength=run["strength"], lr=0.1
        )
        weights = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()])
        zero_fraction[penalty] = (weights == 0).float().mean().item()
    assert zero_fraction["none"] == 0.0
    assert zero_fraction["l1_prox"] > 0.5


def test_a_plain_run_reports_its_final_accuracies(digits):
    result = plain_run(digits, settings(optimizer="adam", epochs=2), 0.01, seed=3)
    assert not result["diverged"]
    assert 0.5 < result["val_accuracy"] <= 1.0
    assert 0.5 < result["test_accuracy"] <= 1.0
    again = plain_run(digits, settings(optimizer="adam", epochs=2), 0.01, seed=3)
    assert again == result  # seeded: the same run twice
