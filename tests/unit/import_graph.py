"""The project's import graph, read with `ast` (imports inside functions count too).

Shared by test_import_cycles.py and test_dvc_deps.py; the walker is test_import_rules'.
"""
from __future__ import annotations

import ast
from functools import cache, lru_cache
from pathlib import Path

from test_import_rules import imported_names

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("oanet", "flows")


@lru_cache(maxsize=1)
def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module under oanet/ and flows/ (a package is its __init__.py)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _as_module(name: str) -> str | None:
    """The longest prefix of `name` that is a project module (`oanet.split.run` -> `oanet.split`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in project_modules():
            return ".".join(parts[:end])
    return None


@cache
def imports_of(module: str) -> frozenset[str]:
    """The project modules `module` imports by name (not the parent packages Python also runs)."""
    tree = ast.parse(project_modules()[module].read_text(), filename=str(project_modules()[module]))
    found = {_as_module(name) for name in imported_names(tree)}
    return frozenset(found - {None, module})


def parents(module: str) -> list[str]:
    """The packages Python runs before `module`: `oanet.ingest.stage` -> `oanet`, `oanet.ingest`."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def closure(entries, skip=frozenset()) -> set[str]:
    """Every project module that importing `entries` can run, parent packages included; `skip` not followed."""
    seen, todo = set(), list(entries)
    while todo:
        module = todo.pop()
        if module in seen or module in skip:
            continue
        seen.add(module)
        todo += [*imports_of(module), *parents(module)]
    return seen
