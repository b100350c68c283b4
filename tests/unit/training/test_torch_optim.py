"""Third-party optimizers as their packages document them: closures, train/eval modes, their
whole state on resume, classes as arguments; and the trial each passes before any job."""

from __future__ import annotations

import io
import re
import sys
import textwrap
import types

import pytest
import torch
from conftest import assert_textbook_epochs, settings, textbook_mlp

from optreg import extensions as extend
from optreg.study.errors import ConfigError
from optreg.study.extensions import extension_warnings, unknown_keywords
from optreg.study.validate import validate_config
from optreg.training.loop import train_runs, train_stack
from optreg.training.torch_optim import TorchOptimizer, needs_closure, trial

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
schedulefree = pytest.importorskip("schedulefree")

CPU = torch.device("cpu")
SGD_CLASS = {"class": "torch.optim:SGD"}


def with_optimizer(cfg: dict, target: str, kwargs=None) -> dict:
    return {**cfg, "optimizer": "mine", "optimizer_spec": {"class": target, "kwargs": kwargs or {}}}


def cell(target: str, kwargs=None, epochs: int = 2) -> dict:
    return with_optimizer(
        settings(epochs=epochs, model={"model": "mlp", "hidden": [8]}), target, kwargs
    )


# ---------------------------------------------------------------- training as documented
@pytest.mark.parametrize(
    ("target", "kwargs", "lr", "plain_kwargs", "rel"),
    [
        # LBFGS's curvature pairs amplify rounding (the stacked MLP's bmm against nn.Linear)
        ("torch.optim:LBFGS", {"max_iter": 2}, 0.1, {"max_iter": 2}, 1e-4),
        (
            "pytorch_optimizer:SAM",
            {"base_optimizer": SGD_CLASS, "rho": 0.05, "momentum": 0.9},
            0.05,
            {"base_optimizer": torch.optim.SGD, "rho": 0.05, "momentum": 0.9},
            1e-5,
        ),
    ],
)
@pytest.mark.parametrize("backward", ["by hand", "autograd"])
def test_a_closure_optimizer_trains_as_its_documented_loop(
    digits, monkeypatch, target, kwargs, lr, plain_kwargs, rel, backward
):
    """LBFGS and SAM get a closure recomputing the loss on the same batch: each run equals
    the textbook loop calling `step(closure)`, as torch and pytorch_optimizer document,
    whether the model's backward is written out (the built-in MLP) or autograd's."""
    if backward == "autograd":
        from optreg.training.models import StackedMLP

        monkeypatch.delattr(StackedMLP, "loss_and_gradients")
    cfg = cell(target, kwargs)
    assert needs_closure(extend.load(target), extend.resolve_arguments(kwargs), lr)
    (result,) = train_runs(digits, cfg, [lr], [3], CPU, max_stack=1)
    plain = textbook_mlp(3)
    optimizer = extend.load(target)(plain.parameters(), lr=lr, **plain_kwargs)
    assert_textbook_epochs(
        plain, optimizer, 3, digits, result["history"], cfg["batch_size"], closure=True, rel=rel
    )


class TrainsInInit(schedulefree.AdamWScheduleFree):
    """A subclass that puts itself in train mode (what runs on main, evaluating at y)."""

    def __init__(self, params, lr=0.0025, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        self.train()


@pytest.mark.parametrize("target", ["schedulefree:AdamWScheduleFree", "sf_subclass:TrainsInInit"])
def test_a_schedule_free_optimizer_is_evaluated_at_its_average(digits, monkeypatch, target):
    """train() before training steps, eval() before every evaluation and the records:
    every epoch's losses and the test accuracy equal schedulefree's reference usage."""
    module = types.ModuleType("sf_subclass")
    module.TrainsInInit = TrainsInInit
    monkeypatch.setitem(sys.modules, "sf_subclass", module)
    cfg = cell(target, epochs=3)
    (result,) = train_runs(digits, cfg, [0.01], [2], CPU, max_stack=1)
    plain = textbook_mlp(2)
    optimizer = schedulefree.AdamWScheduleFree(plain.parameters(), lr=0.01)
    assert_textbook_epochs(plain, optimizer, 2, digits, result["history"], cfg["batch_size"])
    with torch.no_grad():  # the optimizer is in eval mode: the averaged weights
        test_acc = (plain(digits.x["test"]).argmax(1) == digits.y["test"]).double().mean()
    assert result["final"]["test_accuracy"] == pytest.approx(test_acc.item())
    # The weights recorded are the averaged ones too.
    w = torch.cat([plain[0].weight.flatten(), plain[2].weight.flatten()]).double()
    assert result["weights"]["l2_norm"] == pytest.approx(w.square().sum().sqrt().item(), rel=1e-5)


@pytest.mark.parametrize(
    ("target", "kwargs", "lr"),
    [
        ("schedulefree:AdamWScheduleFree", {}, 0.01),
        ("pytorch_optimizer:Prodigy", {}, 1.0),
        ("pytorch_optimizer:SAM", {"base_optimizer": SGD_CLASS, "momentum": 0.9}, 0.05),
        ("torch.optim:LBFGS", {"max_iter": 3}, 0.5),
    ],
)
def test_a_run_resumed_mid_epoch_continues_exactly(digits, target, kwargs, lr):
    """A checkpoint holds the param groups' own state too (Prodigy's d, schedule-free's k
    and mode): a stack restored from it, in the middle of its second epoch, ends exactly
    where the uninterrupted one does."""
    cfg = cell(target, kwargs)
    (whole,) = train_stack(digits, cfg, [lr], [1], CPU)[0]
    saved = []

    class Stop(Exception):
        pass

    class Watch:  # a checkpoint at the 25th batch (in epoch 2), then the job is killed
        due, batches = 0.0, 0

        def between_batches(self, epoch, epochs, done, n, snapshot):
            self.batches += 1
            if self.batches == 25:
                buffer = io.BytesIO()
                torch.save(snapshot(), buffer)  # through a file, as a checkpoint is read
                buffer.seek(0)
                saved.append(torch.load(buffer, weights_only=True))
                raise Stop

        def end_epoch(self, *args, **kwargs):
            pass

    with pytest.raises(Stop):
        train_stack(digits, cfg, [lr], [1], CPU, watch=Watch())
    assert saved[0]["epoch"] == 2
    (resumed,) = train_stack(digits, cfg, [lr], [1], CPU, resume=saved[0])[0]
    for a, b in zip(resumed["history"], whole["history"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    assert resumed["final"] == pytest.approx(whole["final"], rel=1e-6)


def test_class_arguments_are_imported_for_the_optimizer():
    params = [torch.zeros(1, 2, requires_grad=True)]
    opt = TorchOptimizer(
        pytorch_optimizer.SAM, params, torch.tensor([0.1]), {"base_optimizer": SGD_CLASS}
    )
    assert isinstance(opt.inner.base_optimizer, torch.optim.SGD)


# ---------------------------------------------------------------- the trial before any job
@pytest.mark.parametrize(
    ("target", "kwargs", "lr"),
    [
        ("pytorch_optimizer:Lion", {}, 1e-4),
        ("pytorch_optimizer:AdaBelief", {}, 1e-3),
        ("pytorch_optimizer:Prodigy", {}, 1.0),
        ("pytorch_optimizer:Adan", {}, 1e-3),
        ("pytorch_optimizer:SOAP", {}, 3e-3),
        ("pytorch_optimizer:SAM", {"base_optimizer": torch.optim.SGD}, 0.05),
        ("torch.optim:LBFGS", {}, 1.0),
        ("schedulefree:AdamWScheduleFree", {}, 0.0025),
        ("torch.optim:NAdam", {}, 0.002),
    ],
)
def test_the_optimizers_researchers_bring_pass_the_trial(target, kwargs, lr):
    assert trial(extend.load(target), kwargs, lr) is None


class NoFinite(torch.optim.SGD):
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.data.fill_(float("nan"))


class StateOutside(torch.optim.SGD):
    """Keeps a step count outside `state` and the param groups: a resume restarts it."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.count = 0

    def step(self, closure=None):
        self.count += 1
        for group in self.param_groups:
            for p in group["params"]:
                p.data.add_(p.grad, alpha=-group["lr"] * self.count)


class OneWayModes(torch.optim.SGD):
    """eval() moves the parameters, train() does not move them back."""

    def train(self):
        pass

    def eval(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.data.mul_(2)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (NoFinite, {}, "non-finite"),
        (StateOutside, {}, "resumed from its saved state ends elsewhere"),
        (OneWayModes, {}, r"eval\(\) then train\(\)"),
        (pytorch_optimizer.SAM, {"base_optimizer": "torch.optim.SGD"}, r"\{class: "),
    ],
)
def test_the_trial_refuses_what_would_train_wrong_or_fail_mid_study(cls, kwargs, message):
    problem = trial(cls, kwargs, 0.1)
    assert problem is not None and re.search(message, problem), problem


# ---------------------------------------------------------------- the config, before any job
@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad_optim.py").write_text(
        textwrap.dedent(
            """
            import torch


            class NoFinite(torch.optim.SGD):
                def step(self, closure=None):
                    for group in self.param_groups:
                        for p in group["params"]:
                            p.data.fill_(float("nan"))
            """
        )
    )
    extend.use_path([])
    yield tmp_path


def add(config: dict, entry: dict) -> dict:
    config["optimizers"] = {"mine": entry}
    config["studies"]["optimization"]["factors"]["optimizer"] += ["mine"]
    return config


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (  # a YAML string where a class is needed: refused, saying how to write a class
            {
                "class": "pytorch_optimizer:SAM",
                "default_lr": 0.05,
                "kwargs": {"base_optimizer": "torch.optim.SGD"},
            },
            r"optimizers\.mine\.class: pytorch_optimizer:SAM .*'str' object is not callable"
            r".*\{class: \"module:Class\"\}",
        ),
        (
            {
                "class": "pytorch_optimizer:SAM",
                "default_lr": 0.05,
                "kwargs": {"base_optimizer": {"class": "torch.optim:SGDD"}},
            },
            r"optimizers\.mine\.kwargs\.base_optimizer\.class: cannot import 'torch\.optim:SGDD'",
        ),
        (  # a keyword a **kwargs class would swallow unused
            {
                "class": "pytorch_optimizer:Lion",
                "default_lr": 1e-4,
                "kwargs": {"betaz": [0.9, 0.9]},
            },
            r"optimizers\.mine\.kwargs\.betaz: pytorch_optimizer:Lion takes no parameter "
            r"'betaz'.*did you mean 'betas'",
        ),
        (  # SAM passes its other keywords to its base optimizer: checked against that
            {
                "class": "pytorch_optimizer:SAM",
                "default_lr": 0.05,
                "kwargs": {"base_optimizer": SGD_CLASS, "momentun": 0.9},
            },
            r"optimizers\.mine\.kwargs\.momentun: neither pytorch_optimizer:SAM nor "
            r"torch\.optim\.sgd:SGD .*did you mean 'momentum'",
        ),
        (
            {"class": "bad_optim:NoFinite", "default_lr": 0.1},
            r"optimizers\.mine\.class: bad_optim:NoFinite \(a trial .*non-finite",
        ),
    ],
)
def test_a_third_party_optimizer_that_would_fail_is_refused_before_any_job(
    smoke_config, user_dir, entry, message
):
    with pytest.raises(ConfigError, match=message):
        validate_config(add(smoke_config, entry))


@pytest.mark.parametrize(
    "entry",
    [
        {"class": "torch.optim:LBFGS", "default_lr": 1.0, "kwargs": {"max_iter": 3}},
        {
            "class": "pytorch_optimizer:SAM",
            "default_lr": 0.05,
            "kwargs": {"base_optimizer": SGD_CLASS, "momentum": 0.9, "rho": 0.05},
        },
        {"class": "schedulefree:AdamWScheduleFree", "default_lr": 0.0025},
        {"class": "pytorch_optimizer:Lion", "default_lr": 1e-4, "kwargs": {"betas": [0.9, 0.99]}},
    ],
)
def test_a_usable_third_party_optimizer_is_accepted(smoke_config, user_dir, entry):
    validate_config(add(smoke_config, entry))
    assert extension_warnings(smoke_config) == []


def test_snakemake_warns_naming_a_keyword_whose_use_cannot_be_told(smoke_config, user_dir):
    (user_dir / "opaque_optim.py").write_text(
        "import torch\n\n\nclass Opaque(torch.optim.SGD):\n"
        "    def __init__(self, params, lr, **kwargs):\n"
        "        super().__init__(params, lr=lr)\n"
    )
    entry = {"class": "opaque_optim:Opaque", "default_lr": 0.1, "kwargs": {"gamma": 0.5}}
    validate_config(add(smoke_config, entry))  # accepted: it may use gamma
    (line,) = extension_warnings(smoke_config)
    assert line.startswith("optimizers.mine.kwargs: 'gamma' is not a named parameter of")


def test_a_keyword_whose_use_cannot_be_told_is_warned_about():
    class Opaque(torch.optim.SGD):
        def __init__(self, params, lr, **kwargs):  # no docstring listing its parameters
            super().__init__(params, lr=lr)

    refused, warnings = unknown_keywords(Opaque, "my:Opaque", {"gamma": 0.5})
    assert refused == [] and len(warnings) == 1 and "'gamma'" in warnings[0]


def test_a_run_records_the_package_its_optimizer_came_from(digits_file, tmp_path):
    import importlib.metadata

    from optreg.records import read_run
    from optreg.training.job import run_job

    paths = run_job(
        data_path=digits_file,
        out_dir=tmp_path / "runs",
        study="s",
        combination="c",
        factors={},
        settings=cell("pytorch_optimizer:SAM", {"base_optimizer": SGD_CLASS}, epochs=1),
        phase="tune-eval",
        tuning_seeds=[0],
        seeds=[5],
        lr_grid=[0.05],
        lr_limits=[0.05, 0.05],
        default_lr=0.05,
    )
    packages = read_run(paths[0])["provenance"]["packages"]
    assert packages == {
        "pytorch_optimizer": importlib.metadata.version("pytorch_optimizer"),
        "torch": torch.__version__.split("+")[0],
    }


@pytest.mark.parametrize(
    ("target", "kwargs", "lr", "penalty"),
    [
        ("pytorch_optimizer:SAM", {"base_optimizer": SGD_CLASS}, 0.05, "l1"),
        ("pytorch_optimizer:SAM", {"base_optimizer": SGD_CLASS}, 0.05, "l2"),
    ],
)
def test_a_closure_includes_the_penalty_whichever_the_backward(
    digits, monkeypatch, target, kwargs, lr, penalty
):
    """The closure's loss and gradients carry the cell's penalty: the by-hand MLP and
    autograd train the same run, and the penalty changes it. (SAM: LBFGS, penalized, is
    unstable enough here that rounding alone moves its second epoch by 2%.)"""
    from optreg.training.models import StackedMLP

    def run(strength):
        cfg = {**cell(target, kwargs), "penalty": penalty, "strength": strength}
        (result,) = train_runs(digits, cfg, [lr], [1], CPU, max_stack=1)
        return [h["val_loss"] for h in result["history"]]

    by_hand, none = run(0.01), run(0.0)
    monkeypatch.delattr(StackedMLP, "loss_and_gradients")
    autograd = run(0.01)
    # The penalty moves the losses by far more than the two backwards differ.
    apart = max(abs(a - b) for a, b in zip(by_hand, autograd, strict=True))
    moved = max(abs(a - b) for a, b in zip(by_hand, none, strict=True))
    assert apart <= 1e-3 * max(by_hand) and moved > max(1e-3, 5 * apart)
