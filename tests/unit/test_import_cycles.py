"""No import cycles in oanet/ or flows/, counting imports inside functions.

A cycle held together by a lazy import works until someone moves the import to the top;
the modules should instead share a third module that both import.
"""
from __future__ import annotations

import ast

from import_graph import imports_of, project_modules
from test_import_rules import imported_names


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) for every back edge a depth-first walk meets, each set of modules once."""
    found, done, seen_sets = [], set(), set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt):] + [nxt]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    found.append(cycle)
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    return found


def test_the_project_has_no_import_cycles():
    graph = {module: imports_of(module) for module in project_modules()}
    found = [" -> ".join(c) for c in cycles(graph)]
    assert found == [], "import cycles (break each with a module both sides import):\n" + "\n".join(found)


def test_the_graph_sees_function_level_imports():
    # flows/cli.py imports flows.nightly only inside the `nightly` command; the stage table imports
    # each stage's code inside that stage's function.
    assert "flows.nightly" in imports_of("flows.cli")
    assert "oanet.split" in imports_of("oanet.stages")


def test_cycles_are_found():
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}) == [["a", "b", "c", "a"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_from_import_of_a_submodule_is_an_edge():
    assert "oanet.ingest.inventory" in imported_names(ast.parse("from oanet.ingest import inventory as inv"))
