"""Optimizers, models and data sets of one's own, named by import path in the config.

The config's `optimizers`, `models` and `datasets` sections name objects as
`"module:attribute"` (`"my_optim:Lion"`). The module is imported from the
search path: the working directory first, then the config's `extensions_path`
folders (relative to the working directory). Snakemake, a `snakedeploy`
module deployment and SLURM jobs all run in the working directory, so a file
placed there (or in a listed folder) is found by every job. A workflow script
sets the path from its config (`use_config_path`); Python callers use
`use_path`.

A user optimizer is one of two kinds:

- a **stacked rule**: a subclass of `optreg.optim.Optimizer` defining
  `update(params, grads, rates)` (see that class). It trains every run of a job in
  one stacked model, like the built-in four.
- a **`torch.optim.Optimizer` subclass**: trained one run at a time, each run a
  model of its own with its own optimizer, exactly the plain loop
  `opt.zero_grad(); loss.backward(); opt.step()`. Every parameter it sees has a
  leading run dimension of size 1 (the stacked layout).

A user model is a factory returning a `torch.nn.Module` that maps a batch
[B, *input_shape] to logits [B, classes]. Its runs are stacked with
`torch.func` (`stack_module_state`, `functional_call`, `vmap`) when the module
allows it, else trained one at a time (see `optreg.funcmodel`).

A user data set is a loader returning arrays, pooled `(x, y)` or with an
official test split `(x_train, y_train, x_test, y_test)`; it is split, scaled,
fingerprinted and stored like the built-in sets (`prepare_user_dataset`).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path

SECTIONS = {"optimizers": "class", "models": "factory", "datasets": "loader"}
_search_path: list[Path] | None = None


class ExtensionError(ValueError):
    """A user extension that cannot be loaded or used; the message names the config key."""


# ---------------------------------------------------------------- the search path
def search_path(folders=(), cwd: str | os.PathLike | None = None) -> list[Path]:
    """The folders user modules are imported from: the working directory, then `folders`."""
    base = Path(cwd or os.getcwd()).resolve()
    return [base, *((base / f).resolve() for f in folders)]


def use_path(folders=(), cwd: str | os.PathLike | None = None) -> list[Path]:
    """Make this process import user modules from `search_path(folders, cwd)`."""
    global _search_path
    _search_path = search_path(folders, cwd)
    return _search_path


def use_config_path(config: dict) -> list[Path]:
    """`use_path` with the config's `extensions_path` (what workflow scripts call)."""
    return use_path(config.get("extensions_path", ()))


def current_path() -> list[Path]:
    return _search_path if _search_path is not None else search_path()


@contextlib.contextmanager
def _on_sys_path(folders) -> Iterator[None]:
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def split_target(target: str) -> tuple[str, str]:
    module, sep, attribute = target.partition(":")
    if not sep or not module or not attribute:
        raise ExtensionError(f"{target!r} is not an import path of the form 'module:attribute'")
    return module, attribute


def module_file(module: str, folders) -> Path | None:
    """The file that importing `module` from `folders` runs (None when not in them)."""
    parts = module.split(".")
    for folder in folders:
        base = Path(folder).joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def load(target: str, folders=None):
    """The object `target` ("module:attribute") names, imported from the search path."""
    module_name, attribute = split_target(target)
    folders = current_path() if folders is None else folders
    with _on_sys_path(folders):
        module = importlib.import_module(module_name)
    obj = module
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------- config checks
def user_names(config: dict, section: str) -> list[str]:
    entries = config.get(section)
    return list(entries) if isinstance(entries, dict) else []


def extend_schema(schema: dict, config) -> dict:
    """`schema` with the config's own optimizer, model and dataset names allowed (a copy
    when there are any; names colliding with built-ins are reported by `check_config`)."""
    if not isinstance(config, dict) or not any(user_names(config, s) for s in SECTIONS):
        return schema
    import copy

    schema = copy.deepcopy(schema)
    optimizers = user_names(config, "optimizers")
    schema["$defs"]["optimizer"]["enum"] += optimizers
    default_lr = schema["properties"]["protocol"]["properties"]["default_lr"]
    for name in optimizers:
        default_lr["properties"].setdefault(name, {"$ref": "#/$defs/lr"})
    problem = schema["properties"]["problems"]["additionalProperties"]
    problem["properties"]["model"]["enum"] += user_names(config, "models")
    datasets = user_names(config, "datasets")
    problem["properties"]["dataset"]["enum"] += datasets
    # A user data set may hold images; the model decides what it can take.
    with contextlib.suppress(KeyError, TypeError):
        problem["then"]["properties"]["dataset"]["enum"] += datasets
    return schema


def _builtin_names() -> dict[str, set[str]]:
    from .config import config_schema

    schema = config_schema()
    problem = schema["properties"]["problems"]["additionalProperties"]["properties"]
    return {
        "optimizers": set(schema["$defs"]["optimizer"]["enum"]),
        "models": set(problem["model"]["enum"]),
        "datasets": set(problem["dataset"]["enum"]),
    }


def _defined_without_import(target: str, folders, exc: ModuleNotFoundError) -> bool:
    """Whether the user's file defines `target` when it cannot be imported here only for a
    package this process lacks (a Snakemake without torch, whose jobs run in the conda
    environment that has it): then the jobs import it, and report what fails there."""
    import ast

    module, attribute = split_target(target)
    path = module_file(module, folders)
    missing = exc.name or ""
    if path is None or missing == module or module.startswith(missing + "."):
        return False
    defined = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return attribute.split(".")[0] in defined


def check_config(config: dict) -> list[str]:
    """Problems with the config's user extensions, one line each naming the key.

    Imports every named object (from the config's search path), so an unknown module or
    attribute, a failing import, or an object of the wrong kind is reported before any job
    runs. Also fills `protocol.default_lr` with each user optimizer's `default_lr`.
    """
    problems = []
    builtin = _builtin_names()
    folders = search_path(config.get("extensions_path", ()))
    for section, key in SECTIONS.items():
        for name, entry in config.get(section, {}).items():
            where = f"{section}.{name}"
            if name in builtin[section]:
                problems.append(f"{where}: '{name}' is a built-in name; choose another")
                continue
            try:
                obj = load(entry[key], folders)
            except ModuleNotFoundError as exc:
                if not _defined_without_import(entry[key], folders, exc):
                    problems.append(
                        f"{where}.{key}: cannot import {entry[key]!r} (searched "
                        f"{', '.join(map(str, folders))}): {type(exc).__name__}: {exc}"
                    )
                continue
            except Exception as exc:  # any import failure is the user's to see, verbatim
                problems.append(
                    f"{where}.{key}: cannot import {entry[key]!r} (searched "
                    f"{', '.join(map(str, folders))}): {type(exc).__name__}: {exc}"
                )
                continue
            if section == "optimizers":
                try:
                    optimizer_kind(obj)
                except ExtensionError as exc:
                    problems.append(f"{where}.{key}: {exc}")
            elif not callable(obj):
                problems.append(f"{where}.{key}: {entry[key]!r} is not callable")
    default_lr = config["protocol"]["default_lr"]
    for name, entry in config.get("optimizers", {}).items():
        if name in builtin["optimizers"]:
            continue
        given = default_lr.setdefault(name, entry["default_lr"])
        if given != entry["default_lr"]:
            problems.append(
                f"protocol.default_lr.{name}: {given} differs from optimizers.{name}.default_lr "
                f"({entry['default_lr']}); give it in one place"
            )
    return problems


def cell_specs(settings: dict, config: dict) -> None:
    """Add to a cell's settings what its user extensions are (import path, arguments), so
    that a changed entry changes the settings of exactly the cells that use it."""
    entry = config.get("optimizers", {}).get(settings["optimizer"])
    if entry is not None:
        settings["optimizer_spec"] = {"class": entry["class"], "kwargs": entry["kwargs"]}
    entry = config.get("models", {}).get(settings["model"]["model"])
    if entry is not None:
        settings["model"] = {
            "model": settings["model"]["model"],
            "factory": entry["factory"],
            "kwargs": entry["kwargs"],
            "stack": entry["stack"],
        }
    entry = config.get("datasets", {}).get(settings["data"]["dataset"])
    if entry is not None:
        settings["data"] = {
            **settings["data"],
            "loader": entry["loader"],
            "kwargs": entry["kwargs"],
        }


def cell_modules(settings: dict) -> list[str]:
    """The user modules the train jobs of a cell import."""
    specs = [settings.get("optimizer_spec", {}).get("class"), settings["model"].get("factory")]
    return [split_target(t)[0] for t in specs if t]


# ---------------------------------------------------------------- optimizers
def optimizer_kind(cls) -> str:
    """'stacked' (an `optreg.optim.Optimizer`) or 'torch' (a `torch.optim.Optimizer`)."""
    from .optim import Optimizer

    if isinstance(cls, type) and issubclass(cls, Optimizer):
        return "stacked"
    # A torch.optim subclass has imported torch.optim already; importing it here for a
    # class that is not one would cost a second (torch._dynamo) for nothing.
    torch_optim = sys.modules.get("torch.optim")
    if torch_optim and isinstance(cls, type) and issubclass(cls, torch_optim.Optimizer):
        return "torch"
    raise ExtensionError(
        f"{cls!r} is neither a subclass of optreg.optim.Optimizer (a stacked rule) nor of "
        "torch.optim.Optimizer"
    )


def per_run(settings: dict, meta: dict) -> bool:
    """Whether a cell's runs train one at a time (a torch.optim optimizer, or a model that
    torch.func cannot stack on data set `meta`), rather than stacked."""
    spec = settings.get("optimizer_spec")
    if spec and optimizer_kind(load(spec["class"])) == "torch":
        return True
    if "factory" in settings["model"]:
        from .funcmodel import stackable

        return not stackable(settings["model"], meta)
    return False


def stack_limit(settings: dict, meta: dict, limit: int | None) -> int | None:
    """The most runs a stack of this cell may hold: 1 for per-run cells, else `limit`."""
    return 1 if per_run(settings, meta) else limit


class TorchOptimizer:
    """A `torch.optim.Optimizer` driving a one-run stack, with the interface of
    `optreg.optim.Optimizer` that the training loop and the penalties use."""

    def __init__(self, cls, params, lr, kwargs: dict):
        if lr.numel() != 1:
            raise ExtensionError(
                f"{cls.__name__} is a torch.optim optimizer: it trains one run at a time, "
                f"got {lr.numel()} runs in one stack"
            )
        self.cls, self.kwargs, self.lr = cls, kwargs, lr
        self.params = list(params)
        self.inner = cls(self.params, lr=lr.item(), **kwargs)
        self.steps = 0

    def zero_grad(self) -> None:
        self.inner.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.inner.step()
        self.steps += 1

    def keep(self, mask, params) -> None:
        """Keep the run (`mask` [True]) on the model's new parameters, or drop it."""
        params = list(params)
        if not bool(mask.all()):
            self.params, self.lr = params, self.lr[mask]
            return
        state = [self.inner.state.get(p, {}) for p in self.params]
        self.params = params
        self.inner = self.cls(params, lr=self.lr.item(), **self.kwargs)
        for p, s in zip(params, state, strict=True):
            if s:
                self.inner.state[p] = s

    @property
    def state(self) -> dict[str, list]:
        """The state as named lists, one entry per parameter (the stacked rules' layout)."""
        out: dict[str, list] = {}
        for i, p in enumerate(self.params):
            for name, value in self.inner.state.get(p, {}).items():
                out.setdefault(name, [None] * len(self.params))[i] = value
        return out

    @state.setter
    def state(self, named: dict[str, list]) -> None:
        for name, values in named.items():
            for p, value in zip(self.params, values, strict=True):
                if value is not None:
                    self.inner.state[p][name] = value


def build_optimizer(settings: dict, params, lrs):
    """The optimizer of a cell: a built-in one, or the user's (`settings["optimizer_spec"]`)."""
    import torch

    from . import optim

    spec = settings.get("optimizer_spec")
    if spec is None:
        return optim.build_optimizer(settings["optimizer"], params, lrs, settings["momentum"])
    params = list(params)
    lr = torch.as_tensor(lrs, dtype=params[0].dtype, device=params[0].device).reshape(-1)
    if lr.numel() == 1:
        lr = lr.expand(params[0].shape[0]).clone()
    cls = load(spec["class"])
    if optimizer_kind(cls) == "torch":
        return TorchOptimizer(cls, params, lr, dict(spec["kwargs"]))
    return cls(params, lr, **spec["kwargs"])


# ---------------------------------------------------------------- models
def factory_arguments(factory, meta: dict, activation: str, kwargs: dict) -> dict:
    """The keyword arguments a model factory accepts among `input_shape`, `n_features`,
    `n_classes` and `activation`, plus the entry's own `kwargs`."""
    offered = {
        "input_shape": tuple(meta["input_shape"]),
        "n_features": meta["n_features"],
        "n_classes": meta["n_classes"],
        "activation": activation,
    }
    parameters = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    chosen = {k: v for k, v in offered.items() if takes_all or k in parameters}
    return {**chosen, **kwargs}


# ---------------------------------------------------------------- data sets
def _as_arrays(name: str, loaded) -> tuple:
    import numpy as np

    if not isinstance(loaded, tuple | list) or len(loaded) not in (2, 4):
        raise ExtensionError(
            f"dataset {name!r}: the loader must return (x, y) or (x_train, y_train, x_test, "
            f"y_test), got {type(loaded).__name__}"
        )
    arrays = [np.asarray(a) for a in loaded]
    for x, y in zip(arrays[::2], arrays[1::2], strict=True):
        if len(x) != len(y) or len(y) == 0 or y.ndim != 1:
            raise ExtensionError(
                f"dataset {name!r}: features {x.shape} and labels {y.shape} must have the "
                "same, non-zero number of rows, labels one per row"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ExtensionError(f"dataset {name!r}: labels must be integers 0..classes-1")
        if not np.isfinite(x.astype(np.float64)).all():
            raise ExtensionError(f"dataset {name!r}: features hold NaN or infinite values")
    return tuple(arrays)


def prepare_user_dataset(
    name: str,
    spec: dict,
    out_path: str | os.PathLike,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict:
    """Load a user data set (`spec`: loader, kwargs), split and scale it like the built-in
    ones, write its tensor file atomically, return its metadata (with `sha256`).

    Pooled `(x, y)`: stratified train/val/test parts; `(x_train, y_train, x_test, y_test)`:
    the test part kept, validation carved from the training part. Both standardized with
    the train split's per-feature statistics.
    """
    import numpy as np
    import torch

    from . import data
    from .io import atomic_path

    arrays = _as_arrays(name, load(spec["loader"])(**spec["kwargs"]))
    arrays = [
        a.astype(np.float64) if i % 2 == 0 else a.astype(np.int64) for i, a in enumerate(arrays)
    ]
    if len(arrays) == 2:
        payload = data._pooled_payload(
            name, *arrays, split_seed, validation_fraction, test_fraction
        )
        payload["meta"]["index"] = "rows of the data set as its loader returns them"
    else:
        payload = _official_table_payload(name, *arrays, split_seed, validation_fraction)
    payload["meta"]["source"] = f"loader {spec['loader']} with {spec['kwargs']}"
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    return {**payload["meta"], "sha256": data.fingerprint(payload)}


def _official_table_payload(
    name, x_train, y_train, x_test, y_test, split_seed, validation_fraction
):
    import numpy as np
    import torch

    from . import data

    idx = data.carve_validation(y_train, split_seed, validation_fraction)
    idx["test"] = np.arange(len(y_test))
    xs = {"train": x_train[idx["train"]], "val": x_train[idx["val"]], "test": x_test}
    ys = {"train": y_train[idx["train"]], "val": y_train[idx["val"]], "test": y_test}
    xs = data.standardize(xs)
    meta = {
        **data._describe(name, ys, idx, x_train.shape[1:], split_seed, validation_fraction),
        "test_fraction": None,
        "split": (
            "official: test is the loader's test part; validation is a stratified "
            f"{validation_fraction:g} of its training part drawn with the split seed"
        ),
        "index": "train, val: rows of the loader's training part; test: of its test part",
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    payload = {"meta": meta}
    for k in data.SPLITS:
        payload[f"x_{k}"] = torch.from_numpy(xs[k].reshape(len(xs[k]), -1)).float()
        payload[f"y_{k}"] = torch.from_numpy(ys[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload
