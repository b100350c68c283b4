"""A config's own optimizers, models and data sets, checked before any job.

Each is imported from the config's search path (`optreg.extensions`) and tried the way the
jobs will use it; the schema is widened to allow their names, and each cell's settings
record what its extensions are, so that a changed entry reruns exactly its cells.
"""

from __future__ import annotations

import contextlib

from optreg.data.registry import dataset_entries
from optreg.extensions import (
    SECTIONS,
    ExtensionError,
    load,
    module_file,
    optimizer_kind,
    search_path,
    split_target,
    user_names,
)
from optreg.training.registry import MODELS, OPTIMIZERS


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
    datasets = set(dataset_entries())
    return {"optimizers": set(OPTIMIZERS), "models": set(MODELS), "datasets": datasets}


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


def with_extensions(settings: dict, config: dict) -> dict:
    """A cell's settings with what its user extensions are (import path, arguments), so
    that a changed entry changes the settings of exactly the cells that use it."""
    settings = dict(settings)
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
    return settings


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


def _check_stacked_rule(cls, target: str, kwargs: dict) -> None:
    """A stacked rule defines `update`, and each run's update follows that run's rate and
    slice alone. A rule that replaces `step` (as a `torch.optim` optimizer would), ignores
    `rates` or mixes runs would train without a word, its tuned rates meaning nothing; a few
    steps on a small stack here, each run also alone, show it before any job."""
    base = ("optreg.training.optimizers", "Optimizer")
    own = [c for c in cls.__mro__ if (c.__module__, c.__qualname__) != base and c is not object]
    if not any("update" in vars(c) for c in own):
        replaced = " (it replaces step() instead)" if any("step" in vars(c) for c in own) else ""
        raise ExtensionError(
            f"{target} defines no update(self, params, grads, rates){replaced}: a stacked "
            "rule changes the parameters there, scaled by each run's rate in `rates` "
            "(docs/extending.md)"
        )
    # The trial is the optimizers' own code (optreg.training.optimizers, where torch is): this
    # module
    # only reads configs.
    problem = cls.trial(kwargs)
    if problem:
        raise ExtensionError(f"{target} {problem}")
