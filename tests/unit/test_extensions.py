"""Optimizers, models and data sets of one's own, named by import path in the config."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import assert_textbook_epochs, settings, textbook_mlp

from optreg import extensions as extend
from optreg.data import user as user_data
from optreg.study.errors import ConfigError
from optreg.study.extensions import _check_stacked_rule, unused_entries
from optreg.study.matrix import cells
from optreg.study.validate import validate_config
from optreg.training.loop import train_runs, train_stack
from optreg.training.memory import stack_limit
from optreg.training.optimizers import build_optimizer
from optreg.training.seeds import derived_seed

CPU = torch.device("cpu")

SIGN_SGD = """
import torch
from optreg.training.optimizers import Optimizer


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
        (
            "torch.nn:Linear",
            r"optimizers\.mine\.class: .*neither a subclass of optreg\.training\.optimizers",
        ),
        ("not a path", r"optimizers\.mine\.class: 'not a path' is not an import path"),
        (
            "mine/my_optim:SignSGD",
            r"optimizers\.mine\.class: 'mine/my_optim:SignSGD' is not an import path "
            r"'module:attribute': a module name \(no folder, no '\.py'; list folders in "
            r"extensions_path\)",
        ),
        (
            "my_optim.py:SignSGD",
            r"optimizers\.mine\.class: cannot import 'my_optim\.py:SignSGD' .*"
            r"ModuleNotFoundError: .*; name the module without '\.py': 'my_optim:SignSGD'",
        ),
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


@pytest.mark.parametrize(
    ("section", "entry", "message"),
    [
        (
            "optimizers",
            {"class": "my_optim:SignSGD", "default_lr": 0.1, "kwargs": {"betta": 0.9}},
            r"optimizers\.mine\.kwargs: my_optim:SignSGD cannot take these arguments: .*betta",
        ),
        (
            "optimizers",
            {"class": "torch.optim:NAdam", "default_lr": 0.1, "kwargs": {"beta": 0.9}},
            r"optimizers\.mine\.kwargs: torch\.optim:NAdam cannot take these arguments",
        ),
    ],
)
def test_arguments_an_optimizer_cannot_take_are_named_before_any_job(
    smoke_config, user_dir, section, entry, message
):
    smoke_config["extensions_path"] = ["mine"]
    smoke_config[section] = {"mine": entry}
    with pytest.raises(ConfigError, match=message):
        validate_config(smoke_config)


def test_a_user_module_outside_the_search_path_is_not_found(smoke_config, user_dir):
    smoke_config["optimizers"] = {"signsgd": {"class": "my_optim:SignSGD", "default_lr": 0.01}}
    with pytest.raises(ConfigError, match="optimizers.signsgd.class: cannot import"):
        validate_config(smoke_config)  # the folder `mine` is not in extensions_path


BAD_RULES = """
import torch
from optreg.training.optimizers import Adam, Optimizer


class StepOnly(Optimizer):  # the torch.optim habit: step() in place of update()
    def step(self):
        for p in self.params:
            p.data.add_(p.grad.sign(), alpha=-1e-3)


class Nothing(Optimizer):
    pass


class IgnoresRates(Optimizer):
    def update(self, params, grads, rates):
        torch._foreach_add_(params, grads, alpha=-1e-3)


class MixesRuns(Optimizer):  # normalized by the whole stack's norm, not each run's
    def update(self, params, grads, rates):
        for p, g, r in zip(params, grads, rates):
            p.sub_(r * g / g.norm())


class Typo(Optimizer):
    def update(self, params, grads, rates):
        torch._foreach_addcmul_(params, grads, rates, value=-self.beta)


class Tweaked(Adam):  # update inherited from a built-in rule
    pass
"""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("StepOnly", "defines no update(self, params, grads, rates) (it replaces step() instead)"),
        ("Nothing", "defines no update(self, params, grads, rates): a stacked rule changes"),
        ("IgnoresRates", "end at the same parameters: its update ignores `rates`"),
        ("MixesRuns", "ends elsewhere than the same run trained alone"),
        ("Typo", "fails a trial of 3 steps on a stack of 3 runs: AttributeError: "),
        ("Tweaked", None),
    ],
)
def test_a_stacked_rule_that_breaks_the_protocol_is_named_before_any_job(
    smoke_config, user_dir, name, message
):
    """Each of these would train without a word, its tuned rates meaning nothing, or fail
    in every train job."""
    (user_dir / "mine" / "my_rules.py").write_text(BAD_RULES)
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {"mine": {"class": f"my_rules:{name}", "default_lr": 0.01}}
    if message is None:
        validate_config(smoke_config)
        return
    with pytest.raises(
        ConfigError, match=rf"optimizers\.mine\.class: my_rules:{name}.*{re.escape(message)}"
    ):
        validate_config(smoke_config)


@pytest.mark.parametrize(
    "target",
    [
        "optreg.training.optimizers:SGD",
        "optreg.training.optimizers:RMSprop",
        "optreg.training.optimizers:Adam",
        "lion:Lion",
    ],
)
def test_the_built_in_rules_and_the_example_pass_the_trial(root, target):
    cls = extend.load(target, [root / "examples"])
    _check_stacked_rule(cls, target, {"momentum": 0.9} if "SGD" in target else {})


def test_a_user_entry_no_study_uses_is_named(smoke_config, user_dir):
    """Defining an optimizer without adding it to a study's factors is a forgotten step: it
    would silently be missing from the report."""
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {
        "signsgd": {"class": "my_optim:SignSGD", "default_lr": 0.01},
        "nadam": {"class": "torch.optim:NAdam", "default_lr": 0.002},
    }
    smoke_config["studies"]["optimization"]["factors"]["optimizer"] += ["nadam"]
    config = validate_config(smoke_config)
    lines = unused_entries(config, [c.settings for c in cells(config)])
    assert lines == [
        "optimizers.signsgd: no study uses it, so it is neither trained nor reported; "
        "add 'signsgd' to a study's factors.optimizer (or fixed.optimizer)"
    ]


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
    assert stack_limit(cfg, digits.meta, 7) == 7  # stacked like the built-ins
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
    assert stack_limit(cfg, digits.meta, 7) == 1  # one run at a time
    lrs, seeds = [0.01, 0.003], [4, 5]
    results = train_runs(digits, cfg, lrs, seeds, CPU, max_stack=1)
    cls = extend.load(target)
    for result, lr, seed in zip(results, lrs, seeds, strict=True):
        plain = textbook_mlp(seed)
        optimizer = cls(plain.parameters(), lr=lr, **kwargs)
        assert_textbook_epochs(plain, optimizer, seed, digits, result["history"], cfg["batch_size"])
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
    opt = build_optimizer(cfg, params, [0.1])
    sum(((p - 1) ** 2).sum() for p in params).backward()
    opt.step()
    state = opt.state
    assert set(state) == {"step", "sum"} and len(state["sum"]) == 2
    again = build_optimizer(cfg, params, [0.1])
    again.state = state
    for a, b in zip(again.state["sum"], state["sum"], strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- models
MODELS = """
from torch import nn

ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def mlp(n_features, n_classes, activation, hidden=8):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_features, hidden), ACT[activation](), nn.Linear(hidden, n_classes)
    )


def conv(input_shape, n_classes):
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * input_shape[1] * input_shape[2], n_classes),
    )


def dropout(n_features, n_classes):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_features, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, n_classes)
    )


def not_a_module(n_classes):
    return n_classes
"""


@pytest.fixture
def model_dir(user_dir):
    (user_dir / "mine" / "my_model.py").write_text(MODELS)
    return user_dir


def with_model(cfg: dict, factory: str, **kwargs) -> dict:
    spec = {"model": "mine", "factory": factory, "kwargs": kwargs, "stack": "vmap"}
    return {**cfg, "model": spec}


@pytest.mark.parametrize(
    ("factory", "optimizer"), [("my_model:mlp", "adam"), ("my_model:conv", "momentum")]
)
def test_a_torch_func_stacked_model_trains_each_run_as_it_would_alone(
    digits, model_dir, factory, optimizer
):
    cfg = with_model(settings(epochs=2, optimizer=optimizer, penalty="l2", strength=1e-3), factory)
    assert stack_limit(cfg, digits.meta, 7) == 7  # vmap stacks it
    lrs, seeds = [0.01, 0.03, 0.01], [0, 0, 1]
    stacked, params = train_stack(digits, cfg, lrs, seeds, CPU)
    for i, (lr, seed) in enumerate(zip(lrs, seeds, strict=True)):
        (alone,), (alone_params,) = train_stack(digits, cfg, [lr], [seed], CPU)
        assert alone["final"]["val_loss"] == pytest.approx(
            stacked[i]["final"]["val_loss"], rel=1e-4
        )
        for a, b in zip(alone_params, params[i], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert stacked[0]["final"]["val_accuracy"] > 0.5  # it learned


def test_a_user_model_is_initialized_by_its_factory_from_the_run_seed(digits, model_dir):
    from optreg.training.models import build_model

    spec = with_model(settings(), "my_model:mlp")["model"]
    model = build_model(spec, digits.meta, "relu", [3, 5])
    torch.manual_seed(derived_seed(5, "init"))
    reference = extend.load("my_model:mlp")(n_features=64, n_classes=10, activation="relu")
    for mine, theirs in zip(model.stacked, reference.parameters(), strict=True):
        assert torch.equal(mine[1], theirs.detach())
    assert [tuple(w.shape) for w in model.weights] == [(2, 8, 64), (2, 10, 8)]  # penalized
    assert [tuple(b.shape) for b in model.biases] == [(2, 8), (2, 10)]  # not penalized


def test_a_model_vmap_cannot_stack_trains_one_run_at_a_time(digits, model_dir):
    cfg = with_model(settings(epochs=2), "my_model:dropout")
    assert stack_limit(cfg, digits.meta, 7) == 1  # vmap refuses random layers
    lrs, seeds = [0.01, 0.03], [0, 1]
    together = train_runs(digits, cfg, lrs, seeds, CPU, max_stack=1)
    assert all(r["final"]["val_accuracy"] > 0.5 for r in together)
    # A run's dropout draws depend on its own seed: the same alone as after another run.
    (alone,) = train_runs(digits, cfg, lrs[1:], seeds[1:], CPU, max_stack=1)
    assert alone["history"][-1]["train_loss"] == together[1]["history"][-1]["train_loss"]
    loop = {**cfg, "model": {**cfg["model"], "factory": "my_model:mlp", "stack": "loop"}}
    assert stack_limit(loop, digits.meta, 7) == 1  # asked for by the config


def test_a_factory_that_returns_no_module_is_named(digits, model_dir):
    cfg = with_model(settings(epochs=1), "my_model:not_a_module")
    with pytest.raises(extend.ExtensionError, match="my_model:not_a_module returned int"):
        train_stack(digits, cfg, [0.01], [0], CPU)


# ---------------------------------------------------------------- data sets
DATA = """
import numpy as np


def pooled(n=120, classes=3):
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 4)) + y[:, None]
    return x, y


def official():
    x, y = pooled(150)
    return x[:100], y[:100], x[100:], y[100:]


def bad_labels():
    return np.zeros((10, 2)), np.full(10, 0.5)
"""


@pytest.fixture
def data_dir(user_dir):
    (user_dir / "mine" / "my_data.py").write_text(DATA)
    return user_dir


def test_a_pooled_user_dataset_is_split_scaled_and_fingerprinted_like_a_builtin(data_dir):
    from optreg.data.prepared import load_prepared

    spec = {"loader": "my_data:pooled", "kwargs": {"n": 150}}
    meta = user_data.prepare_user_dataset("blobs", spec, data_dir / "blobs.pt", split_seed=1)
    data = load_prepared(data_dir / "blobs.pt")
    assert meta["sha256"] == data.sha256
    assert meta["sizes"] == {"train": 90, "val": 30, "test": 30}
    assert meta["class_counts"]["test"] == [10, 10, 10]  # stratified
    assert data.x["train"].mean(0).abs().max() < 1e-5  # standardized on train
    again = user_data.prepare_user_dataset("blobs", spec, data_dir / "again.pt", split_seed=1)
    assert again["sha256"] == meta["sha256"]
    other = user_data.prepare_user_dataset("blobs", spec, data_dir / "other.pt", split_seed=2)
    assert other["sha256"] != meta["sha256"]


def test_a_user_dataset_with_a_test_part_keeps_it(data_dir):
    from optreg.data.prepared import load_prepared

    spec = {"loader": "my_data:official", "kwargs": {}}
    meta = user_data.prepare_user_dataset("blobs", spec, data_dir / "b.pt", validation_fraction=0.2)
    assert meta["sizes"] == {"train": 80, "val": 20, "test": 50}
    data = load_prepared(data_dir / "b.pt")
    assert data.meta["split"].startswith("official")


def test_a_loader_returning_bad_labels_is_named_and_writes_nothing(data_dir):
    spec = {"loader": "my_data:bad_labels", "kwargs": {}}
    with pytest.raises(extend.ExtensionError, match="dataset 'bad': labels must be integers"):
        user_data.prepare_user_dataset("bad", spec, data_dir / "bad.pt")
    assert not (data_dir / "bad.pt").exists()


# ---------------------------------------------------------------- dependencies
def test_a_user_module_and_what_it_imports_from_its_folder_are_dependencies(tmp_path, root):
    from optreg.deps import user_dependencies

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "rule.py").write_text("import torch\nfrom . import helper\n")
    (tmp_path / "pkg" / "helper.py").write_text(
        "from optreg.training.optimizers import Optimizer\n"
    )
    (tmp_path / "unused.py").write_text("")
    files = {Path(f) for f in user_dependencies(("pkg.rule",), (tmp_path,), str(root / "src"))}
    mine = {f.relative_to(tmp_path) for f in files if tmp_path in f.parents}
    assert mine == {Path("pkg/__init__.py"), Path("pkg/rule.py"), Path("pkg/helper.py")}
    # the optreg code it imports
    assert root / "src" / "optreg" / "training" / "optimizers.py" in files
    assert not any("torch" in f.parts for f in files)  # installed packages are not followed


# ---------------------------------------------------------------- the examples
def lion_reference(param, grad, m, lr, beta1=0.9, beta2=0.99, weight_decay=0.0):
    """One step of Lion as published (Chen et al. 2023, Algorithm 2), for one tensor."""
    c = beta1 * m + (1 - beta1) * grad
    param = param - lr * (torch.sign(c) + weight_decay * param)
    m = beta2 * m + (1 - beta2) * grad
    return param, m


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_the_lion_example_is_the_published_update_per_run(root, weight_decay):
    lion = extend.load("lion:Lion", [root / "examples"])
    torch.manual_seed(0)
    lrs = [0.01, 0.003, 0.03]
    starts = [torch.randn(3, 5, 4), torch.randn(3, 1, 4)]
    targets = [torch.randn_like(t) for t in starts]
    ours = [t.clone().requires_grad_() for t in starts]
    opt = lion(ours, torch.tensor(lrs), betas=(0.9, 0.99), weight_decay=weight_decay)
    ref = [[t[s].clone() for t in starts] for s in range(3)]  # run s, one tensor each
    moments = [[torch.zeros_like(t[s]) for t in starts] for s in range(3)]
    for _ in range(15):
        opt.zero_grad()
        sum(((p - t) ** 3).abs().sum() for p, t in zip(ours, targets, strict=True)).backward()
        opt.step()
        for s in range(3):
            for i, target in enumerate(targets):
                p = ref[s][i].clone().requires_grad_()
                ((p - target[s]) ** 3).abs().sum().backward()
                ref[s][i], moments[s][i] = lion_reference(
                    ref[s][i], p.grad, moments[s][i], lrs[s], weight_decay=weight_decay
                )
    for s in range(3):
        for mine, theirs in zip(ours, ref[s], strict=True):
            torch.testing.assert_close(mine[s].detach(), theirs, rtol=1e-6, atol=1e-6)
    assert not torch.equal(ours[0].detach(), starts[0])


def test_a_module_needing_a_package_snakemake_lacks_is_checked_by_its_source(
    smoke_config, user_dir, monkeypatch
):
    """Snakemake itself may run without torch (jobs use the conda environment): a user file
    that defines the class is accepted, one that does not is reported."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else find_spec(name)
    )
    (user_dir / "mine" / "my_model.py").write_text(
        "import package_only_jobs_have\n\n\ndef mlp(n_classes):\n    pass\n"
    )
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["models"] = {"mine": {"factory": "my_model:mlp"}}
    validate_config(smoke_config)
    smoke_config["models"] = {"mine": {"factory": "my_model:cnn"}}
    with pytest.raises(ConfigError, match="models.mine.factory: cannot import 'my_model:cnn'"):
        validate_config(smoke_config)


def test_a_module_needing_a_missing_package_is_named_where_the_jobs_would_run(
    smoke_config, user_dir
):
    """Where Snakemake has torch, its environment is the jobs': a user file importing a
    package that is not installed is reported before any job, not by every train job."""
    source = (user_dir / "mine" / "my_optim.py").read_text()
    (user_dir / "mine" / "my_optim.py").write_text("import not_installed_anywhere\n" + source)
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["optimizers"] = {"signsgd": {"class": "my_optim:SignSGD", "default_lr": 0.01}}
    with pytest.raises(
        ConfigError,
        match="optimizers.signsgd.class: cannot import 'my_optim:SignSGD'.*"
        "ModuleNotFoundError: No module named 'not_installed_anywhere'",
    ):
        validate_config(smoke_config)


def test_the_extension_code_is_an_input_only_of_the_jobs_that_run_it(root):
    from optreg.deps import source_dependencies

    def names(script: str) -> set[str]:
        deps = source_dependencies(str(root / "scripts" / script), str(root / "src"))
        package = root / "src" / "optreg"
        return {
            Path(p).relative_to(package).as_posix() if Path(p).is_relative_to(package) else p
            for p in deps
        }

    job_side = {
        "training/torch_optim.py",
        "training/funcmodel.py",
        "data/user.py",
        "training/optimizers.py",
        "training/models.py",
    }
    assert not names("plot.py") & job_side
    config_side = {"study/extensions.py", "study/validate.py", "data/user.py"}
    assert not names("prepare_data.py") & config_side
    assert {"training/torch_optim.py", "training/funcmodel.py"} <= names("train.py")
    assert "data/user.py" not in names("train.py")
    training = {"training/optimizers.py", "training/models.py", "training/loop.py"}
    assert not names("prepare_user_data.py") & training


# ---------------------------------------------------------------- checkpoints
class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


@pytest.mark.parametrize("kind", ["torch.optim", "torch.func model"])
def test_a_killed_job_with_user_code_resumes_to_identical_records(
    digits_file, model_dir, monkeypatch, kind
):
    from optreg.records import read_run
    from optreg.training.checkpoint import Checkpoints
    from optreg.training.job import run_job

    cfg = settings(epochs=2)
    if kind == "torch.optim":
        cfg = with_optimizer(cfg, "mine", "torch.optim:NAdam", {"momentum_decay": 0.003})
    else:
        cfg = with_model(with_optimizer(cfg, "signsgd", "my_optim:SignSGD"), "my_model:mlp")
    job = dict(
        data_path=digits_file,
        study="s",
        combination="c",
        factors={},
        settings=cfg,
        phase="tune-eval",
        tuning_seeds=[0, 1],
        seeds=[5],
        lr_grid=[0.01, 0.1],
        default_lr=0.001,
        checkpoint=model_dir / "checkpoints" / "job.pt",
    )

    def records(folder):
        out = {}
        for path in sorted(folder.glob("*.json")):
            record = read_run(path)
            history = [{k: v for k, v in h.items() if k != "elapsed_s"} for h in record["history"]]
            out[path.name] = {**record, "history": history, "wall_time_s": None}
        return out

    reference = records(Path(run_job(out_dir=model_dir / "reference", **job)[0]).parent)
    job["checkpoint"].unlink()
    real_save = Checkpoints.save

    def save_then_die(self, state):
        real_save(self, state)
        if self.saves == 50:  # in the second run of a one-run-at-a-time job
            raise Killed

    monkeypatch.setattr(Checkpoints, "save", save_then_die)
    with pytest.raises(Killed):
        run_job(out_dir=model_dir / "resumed", checkpoint_minutes=1e-9, **job)
    monkeypatch.setattr(Checkpoints, "save", real_save)
    run_job(out_dir=model_dir / "resumed", **job)
    assert records(model_dir / "resumed") == reference


def test_a_diverging_torch_optim_run_is_recorded_as_diverged(digits):
    cfg = with_optimizer(settings(epochs=2), "mine", "torch.optim:SGD")
    diverged, fine = train_runs(digits, cfg, [1e6, 0.3], [0, 0], CPU, max_stack=1)
    assert diverged["diverged"] and diverged["diverged_epoch"] == 1
    assert diverged["final"]["test_accuracy"] is None
    assert not fine["diverged"] and fine["final"]["val_accuracy"] > 0.5


def test_arguments_a_factory_or_loader_cannot_take_are_named(smoke_config, model_dir):
    (model_dir / "mine" / "my_data.py").write_text(DATA)
    smoke_config["extensions_path"] = ["mine"]
    smoke_config["models"] = {"m": {"factory": "my_model:mlp", "kwargs": {"hiden": 8}}}
    smoke_config["datasets"] = {"d": {"loader": "my_data:pooled", "kwargs": {"m": 3}}}
    with pytest.raises(ConfigError) as error:
        validate_config(smoke_config)
    assert "models.m.kwargs: my_model:mlp cannot take these arguments" in str(error.value)
    assert "datasets.d.kwargs: my_data:pooled cannot take these arguments" in str(error.value)
    smoke_config["models"]["m"]["kwargs"] = {"hidden": 8}
    smoke_config["datasets"]["d"]["kwargs"] = {"n": 30}
    validate_config(smoke_config)


def test_a_user_dataset_is_verified_like_a_builtin_one(data_dir):
    from optreg.data.errors import DataError
    from optreg.data.prepared import load_verified

    spec = {"loader": "my_data:pooled", "kwargs": {}}
    user_data.prepare_user_dataset("blobs", spec, data_dir / "blobs.pt")
    assert load_verified(data_dir / "blobs.pt").meta["dataset"] == "blobs"
    user_data.prepare_user_dataset("blobs", {**spec, "kwargs": {"n": 60}}, data_dir / "b2.pt")
    (data_dir / "b2.pt").replace(data_dir / "blobs.pt")  # another set's content, old record
    with pytest.raises(DataError, match="differs from the fingerprint"):
        load_verified(data_dir / "blobs.pt")


# ---------------------------------------------------------------- packages of user code
def test_the_packages_user_code_comes_from_are_named_with_their_versions(user_dir):
    import importlib.metadata

    pytest.importorskip("pytorch_optimizer")
    settings = {
        "optimizer_spec": {
            "class": "pytorch_optimizer:SAM",
            "kwargs": {"base_optimizer": {"class": "torch.optim:SGD"}, "rho": 0.05},
        },
        "model": {"model": "mine", "factory": "my_model:mlp"},
    }
    modules = extend.cell_packages(settings)
    assert modules == ["pytorch_optimizer", "my_model", "torch.optim"]
    (user_dir / "mine" / "my_model.py").write_text("def mlp():\n    pass\n")
    packages = extend.module_packages(modules)
    # The user's own file is tracked by its content, not a version: left out.
    assert packages == {
        "pytorch_optimizer": importlib.metadata.version("pytorch_optimizer"),
        "torch": importlib.metadata.version("torch"),
    }
    assert extend.module_packages(["my_optim"]) == {}
