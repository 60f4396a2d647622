"""Architecture rule: the `oanet` library never imports the orchestration and tracking stack.

Only `flows/` may know Prefect, MLflow, DVC and Great Expectations. Imports are found
with `ast`, so ones inside functions (and `importlib.import_module("...")` calls with a
literal name) count too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import oanet

FORBIDDEN = {"prefect", "mlflow", "dvc", "great_expectations"}
PACKAGE = Path(oanet.__file__).resolve().parent


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level module name) for every import in a module, however deeply nested."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def imported_names(tree: ast.AST) -> list[str]:
    """Every dotted name an import statement brings in, however deeply nested.

    `from a import b` gives `a.b` as well as `a`, because `b` may be a module; callers keep the
    longest prefix that is a module. Relative imports are skipped: the project uses none.
    """
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def forbidden_imports(source: str, filename: str = "<src>") -> list[str]:
    tree = ast.parse(source, filename=filename)
    return [f"{filename}:{line}: {mod}" for line, mod in imported_modules(tree) if mod in FORBIDDEN]


def library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_walk_sees_the_whole_package():
    names = {p.relative_to(PACKAGE).as_posix() for p in library_files()}
    assert {"__init__.py", "cli.py", "layout.py", "config.py", "ingest/stage.py", "synth/stage.py"} <= names


def test_oanet_imports_no_orchestration_or_tracking():
    offences = []
    for path in library_files():
        offences += forbidden_imports(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert offences == [], "oanet/ must not import these (only flows/ may):\n" + "\n".join(offences)


@pytest.mark.parametrize("source", [
    "import prefect",
    "import mlflow.sklearn",
    "from dvc.api import open",
    "from great_expectations.core import ExpectationSuite",
    "import os, prefect as pf",
    "def f():\n    import mlflow\n    return mlflow",
    "class A:\n    def m(self):\n        from prefect import flow",
    "try:\n    import dvc\nexcept ImportError:\n    dvc = None",
    "import importlib\nimportlib.import_module('great_expectations')",
    "__import__('mlflow')",
])
def test_checker_catches_each_form(source):
    assert len(forbidden_imports(source)) == 1, source


@pytest.mark.parametrize("source", [
    "import prefectlib",
    "from .prefect import x",              # a relative module of our own with that name
    "import oanet.flows_helpers",
    "s = 'import mlflow'",
])
def test_checker_ignores_lookalikes(source):
    assert forbidden_imports(source) == []
