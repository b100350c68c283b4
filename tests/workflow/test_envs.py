"""The conda environments (`--sdm conda`) agree with pyproject.toml and cover what jobs import.

Conda channels cannot be reached in CI, so the environments are never created here; these
tests check what can be checked without them: exact pins, the same versions as the Python
package, an environment for every rule, and every third-party module a rule's script runs
(through its optreg imports) provided by that rule's environment.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from optreg.deps import source_dependencies

ROOT = Path(__file__).resolve().parents[2]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))

# conda-forge package -> the name pyproject.toml pins it under, where they differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-gpu": "torch",  # conda-forge's CUDA build (docs/cluster-and-gpu.md: --sdm conda)
    "matplotlib-base": "matplotlib",
    "seaborn-base": "seaborn",
}
# Imported module -> the package (PyPI name) that provides it, where they differ.
MODULE_TO_PYPI = {"sklearn": "scikit-learn", "yaml": "pyyaml"}
# Packages a workflow job never needs in its environment: Snakemake runs on the host.
HOST_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "torchvision"}


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = {}
    for spec in data["project"]["dependencies"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^;\s]+)", spec.strip()).groups()
        pins[name.lower()] = version
    return pins


def env_pins(path: Path) -> dict[str, str]:
    """PyPI name -> version of everything an environment file pins (conda and pip)."""
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep["pip"]:
                name, version = spec.split("==")
                pins[name.lower()] = version
        elif dep != "pip":
            name, version = dep.split("=")
            pins[CONDA_TO_PYPI.get(name, name)] = version
    return pins


def rule_envs_and_scripts() -> dict[str, tuple[str | None, str | None]]:
    """rule name -> (its conda env file, its script), read from workflow/rules/*.smk."""
    rules = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            rules[name] = tuple(
                str((smk.parent / m[1]).resolve()) if m else None for m in (conda, script)
            )
    return rules


def third_party_imports(files) -> set[str]:
    """Top-level names of the non-stdlib, non-optreg modules the files import (anywhere)."""
    found = set()
    for path in files:
        path = Path(path)
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("optreg", "__future__"):
                    found.add(top)
    return found


def test_there_are_environments():
    assert {p.name for p in ENVS} >= {"torch.yaml", "analysis.yaml", "report.yaml"}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_environment_is_conda_forge_and_exactly_pinned(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"], path.name
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^=]*", s) for s in dep["pip"]), dep
        else:
            assert dep == "pip" or re.fullmatch(r"[a-z0-9_.-]+=[0-9][^=*]*", dep), (path.name, dep)


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_environment_pins_agree_with_pyproject(path):
    project = pyproject_pins()
    pins = env_pins(path)
    python = pins.pop("python")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={python}", f"{path.name}: python={python}, pyproject {requires}"
    for name, version in pins.items():
        assert name in project, f"{path.name} pins {name}, which pyproject.toml does not"
        assert version == project[name], (
            f"{path.name} pins {name}={version}, pyproject.toml {name}=={project[name]}"
        )


def test_every_package_dependency_is_in_some_environment():
    covered = set().union(*(env_pins(p) for p in ENVS))
    missing = set(pyproject_pins()) - covered - HOST_ONLY
    assert not missing, f"in pyproject.toml but in no envs/*.yaml: {sorted(missing)}"


def test_every_rule_with_a_script_has_an_existing_environment():
    for rule, (env, script) in rule_envs_and_scripts().items():
        if script is None:
            continue
        assert env is not None, f"rule {rule} has no conda: environment"
        assert Path(env).is_file(), f"rule {rule}: {env} does not exist"


def test_every_rule_environment_provides_what_its_script_imports():
    src = str(ROOT / "src")
    for rule, (env, script) in rule_envs_and_scripts().items():
        if script is None:
            continue
        files = [script, *source_dependencies(script, src)]
        needed = {MODULE_TO_PYPI.get(m, m) for m in third_party_imports(files)}
        provided = set(env_pins(Path(env)))
        missing = needed - provided
        assert not missing, f"rule {rule} imports {sorted(missing)}, not in {Path(env).name}"
