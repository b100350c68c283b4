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
build them with `optreg.user_optim`, `optreg.funcmodel` and `optreg.user_data`.

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
    return [n for n in entries if isinstance(n, str)] if isinstance(entries, dict) else []


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
    environment that has it): then the jobs import it, and report what fails there.

    A process that has torch is one the jobs' code runs in, so there a missing package is
    the user's error, reported before any job rather than by every job that imports it."""
    import ast
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return False
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


def _import_failure(target: str, folders, exc: Exception) -> str:
    message = (
        f"cannot import {target!r} (searched {', '.join(map(str, folders))}): "
        f"{type(exc).__name__}: {exc}"
    )
    module, attribute = split_target(target)
    stem = module.removesuffix(".py")
    if stem != module and module_file(stem, folders):
        message += f"; name the module without '.py': '{stem}:{attribute}'"
    return message


def _call_problem(section: str, obj, kwargs: dict) -> str | None:
    """Why `obj` cannot be called the way the jobs will call it with `kwargs`, or None."""
    import inspect

    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature: the job will tell
        return None
    if section == "optimizers":  # cls(params, lr, **kwargs); torch.optim: lr by name
        args, named = (None,), {"lr": 1.0, **kwargs}
    elif section == "models":  # the offered names it declares, plus kwargs
        args, named = (), dict(kwargs)
        for name in ("input_shape", "n_features", "n_classes", "activation"):
            if name in signature.parameters and name not in named:
                named[name] = None
    else:
        args, named = (), dict(kwargs)
    try:
        signature.bind(*args, **named)
    except TypeError as exc:
        return f"cannot take these arguments: {exc}"
    return None


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
            except Exception as exc:  # any import failure is the user's to see, verbatim
                if not (
                    isinstance(exc, ModuleNotFoundError)
                    and _defined_without_import(entry[key], folders, exc)
                ):
                    problems.append(f"{where}.{key}: {_import_failure(entry[key], folders, exc)}")
                continue
            if section == "optimizers":
                try:
                    kind = optimizer_kind(obj)
                except ExtensionError as exc:
                    problems.append(f"{where}.{key}: {exc}")
                    continue
            elif not callable(obj):
                problems.append(f"{where}.{key}: {entry[key]!r} is not callable")
                continue
            problem = _call_problem(section, obj, entry["kwargs"])
            if problem:
                problems.append(f"{where}.kwargs: {entry[key]} {problem}")
            elif section == "optimizers" and kind == "stacked":
                try:
                    _check_stacked_rule(obj, entry[key], entry["kwargs"])
                except ExtensionError as exc:
                    problems.append(f"{where}.{key}: {exc}")
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


def unused_entries(config: dict, settings) -> list[str]:
    """A line for each user optimizer, model and data set that no cell (`settings`, one per
    cell) uses: it is checked, but neither trained nor reported, which a user who only added
    the entry would not expect."""
    used = {"optimizers": set(), "models": set(), "datasets": set()}
    for s in settings:
        used["optimizers"].add(s["optimizer"])
        used["models"].add(s["model"]["model"])
        used["datasets"].add(s["data"]["dataset"])
    where = {
        "optimizers": "to a study's factors.optimizer (or fixed.optimizer)",
        "models": "as the model of a problem a study uses",
        "datasets": "as the dataset of a problem a study uses",
    }
    return [
        f"{section}.{name}: no study uses it, so it is neither trained nor reported; "
        f"add '{name}' {where[section]}"
        for section in SECTIONS
        for name in user_names(config, section)
        if name not in used[section]
    ]


# ---------------------------------------------------------------- optimizers
def optimizer_kind(cls) -> str:
    """'stacked' (an `optreg.optim.Optimizer`) or 'torch' (a `torch.optim.Optimizer`).

    Told from the class's bases by name: importing optreg.optim here would make every
    module that reads configs depend on the optimizers' code, and importing torch.optim
    costs a second (torch._dynamo).
    """
    bases = {(c.__module__, c.__qualname__) for c in getattr(cls, "__mro__", ())}
    if isinstance(cls, type) and ("optreg.optim", "Optimizer") in bases:
        return "stacked"
    if isinstance(cls, type) and ("torch.optim.optimizer", "Optimizer") in bases:
        return "torch"
    raise ExtensionError(
        f"{cls!r} is neither a subclass of optreg.optim.Optimizer (a stacked rule) nor of "
        "torch.optim.Optimizer"
    )


def _check_stacked_rule(cls, target: str, kwargs: dict) -> None:
    """A stacked rule defines `update`, and each run's update follows that run's rate and
    slice alone. A rule that replaces `step` (as a `torch.optim` optimizer would), ignores
    `rates` or mixes runs would train without a word, its tuned rates meaning nothing; a few
    steps on a small stack here, each run also alone, show it before any job."""
    base = ("optreg.optim", "Optimizer")
    own = [c for c in cls.__mro__ if (c.__module__, c.__qualname__) != base and c is not object]
    if not any("update" in vars(c) for c in own):
        replaced = " (it replaces step() instead)" if any("step" in vars(c) for c in own) else ""
        raise ExtensionError(
            f"{target} defines no update(self, params, grads, rates){replaced}: a stacked "
            "rule changes the parameters there, scaled by each run's rate in `rates` "
            "(docs/extending.md)"
        )
    # The trial is the optimizers' own code (optreg.optim, where torch is): this module
    # only reads configs.
    problem = cls.trial(kwargs)
    if problem:
        raise ExtensionError(f"{target} {problem}")


def describe_extensions(config: dict) -> list[str]:
    """One line per user optimizer, model and data set: its name, import path and arguments
    (what the report states so that a reader can rerun the study)."""
    kinds = {"optimizers": "optimizer", "models": "model", "datasets": "data set"}
    lines = []
    for section, key in SECTIONS.items():
        for name, entry in config.get(section, {}).items():
            arguments = ", ".join(f"{k}={v}" for k, v in entry.get("kwargs", {}).items())
            lines.append(f"{kinds[section]} {name}: {entry[key]}({arguments})")
    return lines
