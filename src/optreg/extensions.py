"""Optimizers, models and data sets of one's own, named by import path in the config.

The config's `optimizers`, `models` and `datasets` sections name objects as
`"module:attribute"` (`"my_optim:Lion"`). The module is imported from the
search path: the working directory first, then the config's `extensions_path`
folders (relative to the working directory). Snakemake, a `snakedeploy`
module deployment and SLURM jobs all run in the working directory, so a file
placed there (or in a listed folder) is found by every job. A workflow script
sets the path from its config (`use_config_path`); Python callers use
`use_path`.

This module finds and checks them (what the workflow does before any job); the jobs
build them with `optreg.training.torch_optim`, `optreg.training.funcmodel` and
`optreg.data.prepare`.

A user optimizer is one of two kinds:

- a **stacked rule**: a subclass of `optreg.training.optimizers.Optimizer` defining
  `update(params, grads, rates)` (see that class). It trains every run of a job in
  one stacked model, like the built-in four.
- a **`torch.optim.Optimizer` subclass**: trained one run at a time, each run a
  model of its own with its own optimizer, exactly the plain loop
  `opt.zero_grad(); loss.backward(); opt.step()`. Every parameter it sees has a
  leading run dimension of size 1 (the stacked layout).

A user model is a factory returning a `torch.nn.Module` that maps a batch
[B, *input_shape] to logits [B, classes]. Its runs are stacked with
`torch.func` (`stack_module_state`, `functional_call`, `vmap`) when the module
allows it, else trained one at a time (see `optreg.training.funcmodel`).

A user data set is a loader returning arrays, pooled `(x, y)` or with an
official test split `(x_train, y_train, x_test, y_test)`; it is split, scaled,
fingerprinted and stored like the built-in sets (`optreg.data.prepare`).
"""

from __future__ import annotations

import contextlib
import importlib
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


# ---------------------------------------------------------------- classes as arguments
def class_argument(value) -> str | None:
    """The import path a keyword value names as `{class: "module:attribute"}`, else None.

    A YAML value cannot be a class; an argument that must be one (SAM's `base_optimizer`)
    is written `{class: "torch.optim:SGD"}` and passed as the object that path names."""
    if isinstance(value, dict) and set(value) == {"class"} and isinstance(value["class"], str):
        return value["class"]
    return None


def resolve_arguments(kwargs: dict, folders=None) -> dict:
    """`kwargs` with each `{class: "module:attribute"}` value replaced by what it names."""
    resolved = {}
    for key, value in kwargs.items():
        target = class_argument(value)
        resolved[key] = value if target is None else load(target, folders)
    return resolved


# ---------------------------------------------------------------- config checks
def cell_modules(settings: dict) -> list[str]:
    """The user modules the train jobs of a cell import."""
    specs = [settings.get("optimizer_spec", {}).get("class"), settings["model"].get("factory")]
    return [split_target(t)[0] for t in specs if t]


def cell_packages(settings) -> list[str]:
    """The modules a cell's user extensions import from, class arguments included (SAM's
    `base_optimizer`): those whose installed package versions the cell's records name."""
    modules = cell_modules(settings)
    spec = settings.get("optimizer_spec") or {}
    for value in (spec.get("kwargs") or {}).values():
        target = class_argument(value)
        if target:
            modules.append(split_target(target)[0])
    return modules


_distributions: dict | None = None


def module_packages(modules, folders=None) -> dict[str, str]:
    """Distribution name -> installed version of the package each module's top-level
    package comes from (`pytorch_optimizer` -> `pytorch-optimizer`), sorted by name. A module
    found in the search path (the user's own file, tracked by its content) or in no
    installed distribution is left out."""
    import importlib.metadata

    global _distributions
    modules = [m for m in modules if m]
    if not modules:
        return {}
    if _distributions is None:  # a scan of every installed distribution: once a process
        _distributions = importlib.metadata.packages_distributions()
    folders = current_path() if folders is None else folders
    out = {}
    for module in modules:
        top = module.split(".")[0]
        if module_file(top, folders) is not None:
            continue
        for dist in _distributions.get(top, []):
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items()))


def config_packages(config: dict) -> dict[str, str]:
    """`module_packages` of every optimizer, model and data set the config names."""
    modules = []
    for section, key in SECTIONS.items():
        for entry in (config.get(section) or {}).values():
            modules.append(split_target(entry[key])[0])
            for value in (entry.get("kwargs") or {}).values():
                target = class_argument(value)
                if target:
                    modules.append(split_target(target)[0])
    return module_packages(modules, search_path(config.get("extensions_path", ())))


def user_names(config: dict, section: str) -> list[str]:
    entries = config.get(section)
    return [n for n in entries if isinstance(n, str)] if isinstance(entries, dict) else []


# ---------------------------------------------------------------- optimizers
def optimizer_kind(cls) -> str:
    """'stacked' (an `optreg.training.optimizers.Optimizer`) or 'torch' (a `torch.optim.Optimizer`).

    Told from the class's bases by name: importing optreg.training.optimizers here would make every
    module that reads configs depend on the optimizers' code, and importing torch.optim
    costs a second (torch._dynamo).
    """
    bases = {(c.__module__, c.__qualname__) for c in getattr(cls, "__mro__", ())}
    if isinstance(cls, type) and ("optreg.training.optimizers", "Optimizer") in bases:
        return "stacked"
    if isinstance(cls, type) and ("torch.optim.optimizer", "Optimizer") in bases:
        return "torch"
    raise ExtensionError(
        f"{cls!r} is neither a subclass of optreg.training.optimizers.Optimizer (a stacked "
        "rule) nor of "
        "torch.optim.Optimizer"
    )


def describe_extensions(config: dict) -> list[str]:
    """One line per user optimizer, model and data set: its name, import path and arguments
    (what the report states so that a reader can rerun the study)."""
    kinds = {"optimizers": "optimizer", "models": "model", "datasets": "data set"}
    lines = []
    for section, key in SECTIONS.items():
        for name, entry in config.get(section, {}).items():
            arguments = ", ".join(
                f"{k}={class_argument(v) or v}" for k, v in entry.get("kwargs", {}).items()
            )
            lines.append(f"{kinds[section]} {name}: {entry[key]}({arguments})")
    return lines
