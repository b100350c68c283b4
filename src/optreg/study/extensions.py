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
    class_argument,
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


def _load(target: str, folders):
    """`load(target, folders)` as a job's import sees it: `sys.argv` only the module's file
    (a job's command line is not the module's), what it prints kept for the message. A
    module that exits while imported (a script turned module: `sys.exit`, or `argparse` on a
    command line it was not given) raises ExtensionError saying so, instead of ending the
    process that checks the config."""
    import io
    import sys

    module = split_target(target)[0]
    argv, printed = sys.argv, io.StringIO()
    sys.argv = [str(module_file(module, folders) or module)]
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return load(target, folders)
    except SystemExit as exc:
        said = " ".join(printed.getvalue().split())
        raise ExtensionError(
            f"the module exits while imported (SystemExit: {exc.code!r}"
            + (f"; it printed: {said[-300:]!r}" if said else "")
            + "): a script's code runs on import; put it under "
            '`if __name__ == "__main__":` (and parse sys.argv only there)'
        ) from None
    finally:
        sys.argv = argv


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
                obj = _load(entry[key], folders)
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
            if section == "optimizers":
                arguments, wrong = _class_arguments(where, entry["kwargs"], folders)
                if wrong:
                    problems += wrong
                    continue
                unknown = unknown_keywords(obj, entry[key], arguments)[0]
                if unknown:
                    problems += [f"{where}.kwargs.{k}: {message}" for k, message in unknown]
                    continue
            problem = _call_problem(section, obj, entry["kwargs"])
            if problem:
                problems.append(f"{where}.kwargs: {entry[key]} {problem}")
            elif section == "optimizers" and kind == "stacked":
                try:
                    _check_stacked_rule(obj, entry[key], entry["kwargs"])
                except ExtensionError as exc:
                    problems.append(f"{where}.{key}: {exc}")
            elif section == "optimizers":
                problem = _torch_trial(obj, arguments, float(entry["default_lr"]))
                if problem:
                    problems.append(f"{where}.{key}: {entry[key]} {problem}")
    if not problems:
        problems += _data_and_model_trials(config, folders)
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


def _data_and_model_trials(config: dict, folders) -> list[str]:
    """Each user data set's loader called and its arrays checked (`optreg.data.user.trial`),
    then each problem's user model built for its data set's shape and classes and run on
    a batch (`optreg.training.funcmodel.trial`): what the prepare and train jobs would find,
    found before any job. Where torch is (the jobs' code runs there); imported by name, as
    in `_torch_trial`."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return []
    from optreg.extensions import use_path

    use_path(config.get("extensions_path", ()))  # where the jobs' `load` looks
    problems, fits = [], {}
    user_data = config.get("datasets", {})
    if user_data:
        trial = importlib.import_module("optreg.data.user").trial
        for name, spec in user_data.items():
            lines, fits[name] = trial(name, spec, config)
            problems += lines
    from optreg.study.shapes import check_shapes

    # The built-in CNN on a user set, now that its shape is known.
    problems += check_shapes(config, {n: fit[0] for n, fit in fits.items() if fit})
    entries = dataset_entries(config)
    for name, entry in entries.items():
        if name not in fits and entry.classes:
            shape = entry.shape(entry.generation_args(config))
            fits[name] = None if shape is None else (shape, entry.classes)
    models = config.get("models", {})
    if not models:
        return problems
    model_trial = importlib.import_module("optreg.training.funcmodel").trial
    activations = _activations(config)
    for problem_name, problem in config["problems"].items():
        spec = models.get(problem["model"])
        fit = fits.get(problem["dataset"])
        if spec is None or fit is None:
            continue
        for activation in activations:
            line = model_trial(spec, fit[0], fit[1], activation)
            if line:
                problems.append(
                    f"models.{problem['model']}.factory: {spec['factory']} (problem "
                    f"'{problem_name}', data set '{problem['dataset']}', activation "
                    f"{activation}) {line}"
                )
                break
    return problems


def _activations(config: dict) -> list[str]:
    """Every activation a cell of the config may build its model with."""
    found = [config["defaults"]["activation"]]
    for study in config["studies"].values():
        found.append(study.get("fixed", {}).get("activation"))
        found += study["factors"].get("activation", [])
    return [a for a in dict.fromkeys(found) if a]


def _torch_trial(cls, arguments: dict, lr: float) -> str | None:
    """`optreg.training.torch_optim.trial`: the jobs' own code, where torch is. Imported by
    name, as the stacked rules' trial is reached through their class: this module only
    reads configs, and the scripts that read them (plot, report) must not count the
    training code among their code inputs, which would rerun them when it changes."""
    import importlib

    return importlib.import_module("optreg.training.torch_optim").trial(cls, arguments, lr)


def _class_arguments(where: str, kwargs: dict, folders) -> tuple[dict, list[str]]:
    """`kwargs` with each `{class: "module:attribute"}` value imported (a class or function
    passed as an argument: SAM's `base_optimizer`), and a line for each that cannot be."""
    arguments, problems = dict(kwargs), []
    for key, value in kwargs.items():
        target = class_argument(value)
        if target is None:
            if isinstance(value, dict) and "class" in value:
                problems.append(
                    f"{where}.kwargs.{key}: a class argument is written "
                    '{class: "module:attribute"} and holds nothing else; got '
                    f"keys {sorted(value)}"
                )
            continue
        try:
            arguments[key] = _load(target, folders)
        except Exception as exc:
            problems.append(f"{where}.kwargs.{key}.class: {_import_failure(target, folders, exc)}")
    return arguments, problems


def _documented(cls) -> tuple[set[str], bool, bool]:
    """The parameter names `cls`'s docstring documents (Google, numpy or Sphinx style),
    whether it has such a section at all, and whether it documents `**kwargs`."""
    import re

    doc = inspect_doc(cls)
    section = re.search(r"^\s*(Args|Arguments|Parameters|Keyword Arguments)\s*:?\s*$", doc, re.M)
    names = set(re.findall(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:", doc, re.M))
    names |= set(re.findall(r":param\s+(?:\w+\s+)?(\w+)\s*:", doc))
    kwargs = bool(re.search(r"^\s*\*\*\w+|:param\s+\*\*", doc, re.M))
    return names, bool(section) or ":param" in doc, kwargs


def inspect_doc(cls) -> str:
    """The docstrings of `cls` and of its `__init__`, its own only (not inherited: a
    subclass with a new signature does not take its base's documented parameters)."""
    import inspect

    own = [vars(cls).get("__doc__"), getattr(vars(cls).get("__init__"), "__doc__", None)]
    return "\n".join(inspect.cleandoc(doc) for doc in own if isinstance(doc, str))


def unknown_keywords(cls, target: str, kwargs: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """The keywords a class taking `**kwargs` would swallow: (key, reason) for each it is
    known not to take, and a warning for each that cannot be decided.

    A key its signature names is taken (a signature without `**kwargs` is checked by
    binding it). Any other is looked up where `**kwargs` goes: a class among the arguments
    (SAM's `base_optimizer`, whose keywords it forwards) takes it by the same rule; else the
    docstring's parameters name it. A class whose docstring lists its parameters without
    `**kwargs` swallows the key unused (pytorch_optimizer's classes put it in their
    defaults): refused. One with no such list, or that documents `**kwargs` without a class
    to forward it to: a warning naming the key."""
    import difflib
    import inspect

    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return [], []
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return [], []
    named = {
        n
        for n, p in parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    documented, has_list, documents_kwargs = _documented(cls)
    forwarded = [
        v for k, v in kwargs.items() if k in named and isinstance(v, type) and v is not cls
    ]
    refused, warnings = [], []
    for key in kwargs:
        if key in named or key == "lr":
            continue
        if forwarded:
            takers = [c for c in forwarded if _takes(c, key, {})]
            if takers:
                continue
            names = " or ".join(f"{c.__module__}:{c.__qualname__}" for c in forwarded)
            refused.append(
                (
                    key,
                    f"neither {target} nor {names} (the class it passes its other keywords "
                    f"to) takes {key!r}{_did_you_mean(key, named, forwarded)}",
                )
            )
        elif key in documented:
            continue
        elif has_list and not documents_kwargs:
            close = difflib.get_close_matches(key, sorted(named), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            refused.append(
                (
                    key,
                    f"{target} takes no parameter {key!r}: it accepts **kwargs and would "
                    f"ignore it without a word (its parameters: {', '.join(sorted(named))}){hint}",
                )
            )
        else:
            warnings.append(
                f"{key!r} is not a named parameter of {target}, which takes **kwargs: "
                "whether it uses it cannot be told here"
            )
    return refused, warnings


def _takes(cls, key: str, kwargs: dict) -> bool:
    import inspect

    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return True
    if key in parameters:
        return True
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return False
    return not unknown_keywords(cls, cls.__name__, {key: None})[0]


def _did_you_mean(key: str, named, classes) -> str:
    import difflib
    import inspect

    names = set(named)
    for c in classes:
        with contextlib.suppress(TypeError, ValueError):
            names |= set(inspect.signature(c).parameters)
    close = difflib.get_close_matches(key, sorted(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def extension_warnings(config: dict) -> list[str]:
    """A line for each keyword of a user optimizer that may be swallowed unused (see
    `unknown_keywords`); the workflow logs them as warnings before any job."""
    lines = []
    folders = search_path(config.get("extensions_path", ()))
    for name, entry in (config.get("optimizers") or {}).items():
        try:
            cls = load(entry["class"], folders)
            arguments = _class_arguments("", entry.get("kwargs", {}), folders)[0]
        except Exception:  # reported by check_config
            continue
        for line in unknown_keywords(cls, entry["class"], arguments)[1]:
            lines.append(f"optimizers.{name}.kwargs: {line}")
    return lines


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
