"""Optimizers, models and data sets of one's own, named by import path in the config."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from conftest import settings
from torch import nn

from optreg import extend
from optreg.config import ConfigError, cells, validate_config
from optreg.models import StackedMLP, derived_seed
from optreg.train import train_runs, train_stack

CPU = torch.device("cpu")

SIGN_SGD = """
import torch
from optreg.optim import Optimizer


class SignSGD(Optimizer):
    \"\"\"p -= lr * sign(m), m = beta * m + (1 - beta) * g: state per parameter.\"\"\"

    def __init__(self, params, lr, beta=0.9):
        super().__init__(params, lr)
        self.beta = beta

    def update(self, params, grads, rates):
        m = self.buffer("m")
        torch._foreach_lerp_(m, grads, 1 - self.beta)
        torch._foreach_addcmul_(params, torch._foreach_sign(m), rates, value=-1)
"""


USER_MODULES = ("my_optim", "my_model", "my_data", "lion", "csv_data", "nn_model")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A working directory with the user's module in a folder of its own, on the path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "my_optim.py").write_text(textwrap.dedent(SIGN_SGD))
    extend.use_path(["mine"])
    yield tmp_path
    extend.use_path([])
    for name in [m for m in sys.modules if m.startswith(USER_MODULES)]:
        del sys.modules[name]  # each test's files are its own


def with_optimizer(cfg: dict, name: str, target: str, kwargs=None) -> dict:
    return {**cfg, "optimizer": name, "optimizer_spec": {"class": target, "kwargs": kwargs or {}}}


# ---------------------------------------------------------------- the config
def test_user_optimizers_join_a_study_with_their_default_rate(smoke_config, user_dir):
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {
        "signsgd": {"class": "my_optim:SignSGD", "default_lr": 0.002, "kwargs": {"beta": 0.5}},
        "nadam": {"class": "torch.optim:NAdam", "default_lr": 0.003},
    }
    smoke_config["studies"]["optimization"]["factors"]["optimizer"] += ["signsgd", "nadam"]
    config = validate_config(smoke_config)
    assert config["protocol"]["default_lr"]["signsgd"] == 0.002
    mine = {c.id: c for c in cells(config) if c.settings["optimizer"] == "signsgd"}
    assert len(mine) == 2  # one per activation
    cell = next(iter(mine.values()))
    assert cell.default_lr == 0.002
    assert cell.settings["optimizer_spec"] == {"class": "my_optim:SignSGD", "kwargs": {"beta": 0.5}}
    builtin = next(c for c in cells(config) if c.settings["optimizer"] == "adam")
    assert "optimizer_spec" not in builtin.settings  # built-in cells keep their settings
    assert validate_config(config) == config  # a validated config validates again


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "nowhere:Lion",
            r"optimizers\.mine\.class: cannot import 'nowhere:Lion' .*"
            r"ModuleNotFoundError: No module named 'nowhere'",
        ),
        ("my_optim:Lion", r"optimizers\.mine\.class: .*AttributeError: .*has no attribute 'Lion'"),
        ("torch.nn:Linear", r"optimizers\.mine\.class: .*neither a subclass of optreg\.optim"),
        ("not a path", r"optimizers\.mine\.class: 'not a path' does not match"),
    ],
)
def test_an_optimizer_that_cannot_be_used_is_named_with_its_error(
    smoke_config, user_dir, entry, message
):
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {"mine": {"class": entry, "default_lr": 0.01}}
    smoke_config["studies"]["optimization"]["factors"]["optimizer"] += ["mine"]
    with pytest.raises(ConfigError, match=message):
        validate_config(smoke_config)


def test_a_user_module_outside_the_search_path_is_not_found(smoke_config, user_dir):
    smoke_config["optimizers"] = {"signsgd": {"class": "my_optim:SignSGD", "default_lr": 0.01}}
    with pytest.raises(ConfigError, match="optimizers.signsgd.class: cannot import"):
        validate_config(smoke_config)  # the folder `mine` is not in extensions_path


def test_a_user_optimizer_may_not_take_a_builtin_name_nor_go_unnamed(smoke_config, user_dir):
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {"adam": {"class": "my_optim:SignSGD", "default_lr": 0.01}}
    with pytest.raises(ConfigError, match="optimizers.adam: 'adam' is a built-in name"):
        validate_config(smoke_config)
    smoke_config["optimizers"] = {}
    smoke_config["studies"]["optimization"]["factors"]["optimizer"] += ["signsgd"]
    with pytest.raises(ConfigError, match=r"optimizer\[3\]: 'signsgd' is not one of"):
        validate_config(smoke_config)


# ---------------------------------------------------------------- stacked rules
def test_a_stacked_rule_trains_stacked_like_each_run_alone(digits, user_dir):
    cfg = with_optimizer(settings(epochs=2), "signsgd", "my_optim:SignSGD", {"beta": 0.8})
    lrs, seeds = [0.001, 0.003, 0.001], [0, 0, 1]
    assert extend.stack_limit(cfg, digits.meta, 7) == 7  # stacked like the built-ins
    (stacked, params) = train_stack(digits, cfg, lrs, seeds, CPU)
    for i, (lr, seed) in enumerate(zip(lrs, seeds, strict=True)):
        (alone,), (alone_params,) = train_stack(digits, cfg, [lr], [seed], CPU)
        for a, b in zip(alone["history"], stacked[i]["history"], strict=True):
            assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        for a, b in zip(alone_params, params[i], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The rule acted, and its argument did: another beta ends elsewhere.
    other = with_optimizer(cfg, "signsgd", "my_optim:SignSGD", {"beta": 0.0})
    (_,), (other_params,) = train_stack(digits, other, lrs[:1], seeds[:1], CPU)
    assert not torch.allclose(other_params[0], params[0][0])


# ---------------------------------------------------------------- torch.optim
@pytest.mark.parametrize(
    ("target", "kwargs"),
    [("torch.optim:NAdam", {"momentum_decay": 0.003}), ("torch.optim:Adagrad", {"lr_decay": 0.01})],
)
def test_a_torch_optim_optimizer_trains_each_run_as_a_plain_loop_would(digits, target, kwargs):
    """Every run of a job equals the textbook loop with that optimizer, whatever its stack."""
    cfg = with_optimizer(
        settings(epochs=2, model={"model": "mlp", "hidden": [8]}), "mine", target, kwargs
    )
    assert extend.stack_limit(cfg, digits.meta, 7) == 1  # one run at a time
    lrs, seeds = [0.01, 0.003], [4, 5]
    results = train_runs(digits, cfg, lrs, seeds, CPU, max_stack=1)
    cls = extend.load(target)
    for result, lr, seed in zip(results, lrs, seeds, strict=True):
        start = StackedMLP(64, [8], 10, "relu", seeds=[seed])
        plain = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
        with torch.no_grad():
            for layer, w, b in zip(plain[::2], start.weights, start.biases, strict=True):
                layer.weight.copy_(w[0].T)
                layer.bias.copy_(b[0, 0])
        optimizer = cls(plain.parameters(), lr=lr, **kwargs)
        order = torch.Generator().manual_seed(derived_seed(seed, "order"))
        x, y = digits.x["train"], digits.y["train"]
        for epoch in result["history"]:
            perm = torch.randperm(len(y), generator=order)
            total = 0.0
            for first in range(0, len(y), cfg["batch_size"]):
                idx = perm[first : first + cfg["batch_size"]]
                loss = F.cross_entropy(plain(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            with torch.no_grad():
                val_loss = F.cross_entropy(plain(digits.x["val"]), digits.y["val"]).item()
            assert epoch["train_loss"] == pytest.approx(total / len(y), rel=1e-5)
            assert epoch["val_loss"] == pytest.approx(val_loss, rel=1e-5)
        with torch.no_grad():
            test_acc = (plain(digits.x["test"]).argmax(1) == digits.y["test"]).double().mean()
        assert result["final"]["test_accuracy"] == pytest.approx(test_acc.item())


def test_a_torch_optim_optimizer_refuses_a_stack_of_several_runs(digits):
    cfg = with_optimizer(settings(epochs=1), "mine", "torch.optim:Adagrad")
    with pytest.raises(extend.ExtensionError, match="one run at a time"):
        train_stack(digits, cfg, [0.01, 0.01], [0, 1], CPU)


def test_a_torch_optim_optimizer_keeps_its_state_in_the_stacked_layout(digits):
    cfg = with_optimizer(settings(), "mine", "torch.optim:Adagrad")
    params = [torch.zeros(1, 3, 2, requires_grad=True), torch.zeros(1, 1, 2, requires_grad=True)]
    opt = extend.build_optimizer(cfg, params, [0.1])
    sum(((p - 1) ** 2).sum() for p in params).backward()
    opt.step()
    state = opt.state
    assert set(state) == {"step", "sum"} and len(state["sum"]) == 2
    again = extend.build_optimizer(cfg, params, [0.1])
    again.state = state
    for a, b in zip(again.state["sum"], state["sum"], strict=True):
        assert torch.equal(a, b)
