"""The package's import graph: no cycles, and no stage importing a later one.

Every import counts, those inside functions too (they run when the function does): a
deferred import hides a cycle from Python's import machinery, not from this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "optreg"
# Sub-packages by stage, in the order a module may import them: each imports only its own
# stage and earlier ones. Top-level modules (io, logs, records, extensions, naming, ...) are
# the plumbing every stage may use.
STAGES = ("plumbing", "data", "training", "study", "analysis", "report")
# Tables that know what exists, importable without torch: every stage may read them (the
# study validates against them, the report orders its figures by them).
REGISTRIES = {"optreg.data.registry", "optreg.training.registry"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES) else "plumbing"


def imports(path: Path) -> set[str]:
    """The optreg modules a file imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m in modules and m != name}


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_package_is_split_by_stage():
    assert {stage(m) for m in GRAPH} == set(STAGES)


def test_no_module_imports_itself_back():
    """No cycle of any length: a depth-first search finds no edge back to a module on its path."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(GRAPH[module]):
            if target in path:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in GRAPH:
        visit(module, [module])


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_stage_imports_only_itself_and_earlier_stages(module):
    rank = STAGES.index(stage(module))
    later = sorted(
        t
        for t in GRAPH[module]
        if t not in REGISTRIES and STAGES.index(stage(t)) > rank and not t.startswith(module)
    )
    assert not later, f"{module} ({stage(module)}) imports later stages: {later}"


@pytest.mark.parametrize("registry", sorted(REGISTRIES))
def test_a_registry_imports_nothing_of_the_stages(registry):
    """What every stage reads must not pull a stage in (nor torch, through one)."""
    assert not {t for t in GRAPH[registry] if stage(t) != "plumbing"}
