"""The project source files a workflow script depends on, from its import graph.

Snakemake reruns a job when its `script:` file changes, not when a module that
script imports changes. The workflow therefore declares, as inputs of each
rule, the files this module finds: every `optreg` module the script imports,
directly or through other `optreg` modules (imports inside functions count:
they run when the function does), each package's `__init__.py`, and the data
files a module names (its JSON Schemas). Computed, never listed by hand, so
the list cannot go stale.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "optreg"


@cache
def _syntax_tree(path: Path) -> ast.Module:
    """The parsed file, once per process: every script's dependencies walk the same modules."""
    return ast.parse(path.read_text(), filename=str(path))


@cache
def _imported_modules(path: Path, module: str | None, only: str | None = PACKAGE) -> frozenset[str]:
    """Dotted names of the modules of package `only` (of any package: None) that the file
    at `path` imports."""
    tree = _syntax_tree(path)
    package = module.rsplit(".", 1)[0] if module and path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if only in (None, a.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                if package is None:
                    continue
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if only is not None and target.split(".")[0] != only:
                continue
            found.add(target)
            # `from optreg import plots` imports the submodule `optreg.report.plots`.
            found.update(f"{target}.{a.name}" for a in node.names)
    return frozenset(found)


def _module_file(src: Path, module: str) -> Path | None:
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module itself


@cache
def _data_files(path: Path, package_dir: Path) -> frozenset[Path]:
    """Files under the package's `schemas/` folder that the module names in a string."""
    schemas = package_dir / "schemas"
    if not schemas.is_dir():
        return frozenset()
    shipped = {p.name: p.resolve() for p in schemas.iterdir() if p.is_file()}
    return frozenset(
        shipped[node.value]
        for node in ast.walk(_syntax_tree(path))
        if isinstance(node, ast.Constant) and node.value in shipped
    )


@cache
def source_dependencies(script: str, src: str) -> tuple[str, ...]:
    """Sorted paths of the project files that `script` runs, besides the script itself.

    `src` is the folder holding the `optreg` package (the checkout's `src/`).
    """
    src_path = Path(src)
    package_dir = src_path / PACKAGE
    seen: dict[str, Path] = {}
    todo = [(m, None) for m in _imported_modules(Path(script), None)]
    while todo:
        module, _ = todo.pop()
        parts = module.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in seen:
                continue
            path = _module_file(src_path, name)
            if path is None:
                continue
            seen[name] = path
            todo.extend((m, None) for m in _imported_modules(path, name))
    files = set(seen.values())
    for path in list(files):
        files |= _data_files(path, package_dir)
    return tuple(sorted(str(f) for f in files))


@cache
def user_dependencies(modules: tuple, folders: tuple, src: str) -> tuple[str, ...]:
    """Sorted paths of the files that importing the user's `modules` (dotted names, found in
    `folders` as `optreg.extensions` imports them) runs: those modules, every module of
    `folders` they import in turn, and the `optreg` files any of them imports. Modules
    found elsewhere (installed packages) are not followed."""
    from optreg.extensions import module_file

    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in seen:
                continue
            path = module_file(name, folders)
            if path is None:
                continue
            seen[name] = path.resolve()
            todo.extend(_imported_modules(seen[name], name, None))
    files = set(seen.values())
    for path in seen.values():
        files.update(Path(f) for f in source_dependencies(str(path), src))
    return tuple(sorted(str(f) for f in files))
