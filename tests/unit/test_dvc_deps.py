"""`dvc repro` reruns a stage only when a listed dependency changes, so every project module a
stage's code can import must be in its `deps` (a folder dep covers every file under it).
Otherwise editing, say, oanet/metrics.py leaves stale results and `dvc repro` a no-op.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from import_graph import ROOT, closure, project_modules

# Stage -> the modules its `cmd` runs: for `oanet <command>`, what that command's function in
# oanet/cli.py imports (see dvc.yaml's header); for `python -m x`, module x.
ENTRIES = {
    "data": ("oanet.intake", "oanet.config"),
    "ingest": ("oanet.ingest.stage", "oanet.config"),
    "validate": ("flows.validate",),
    "split": ("oanet.split", "oanet.config"),
    "bag": ("oanet.tabular.stage", "oanet.config"),
    "fuse": ("oanet.fusion.stage", "oanet.config"),
    "gate": ("oanet.gate.stage", "oanet.config"),
    "drift": ("oanet.drift.stage", "oanet.config"),
    "evaluate": ("oanet.evaluate.stage", "oanet.config"),
    "report": ("oanet.report", "oanet.config"),
    "register": ("flows.register",),
}
# How a stage is launched, not what it writes: the command dispatchers and the top-level package
# files (a docstring and a version). The lock and offline defaults are listed: every command runs them.
PLUMBING = frozenset({"oanet.cli", "flows.cli", "oanet", "flows"})


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def dep_paths(stage: dict) -> list[Path]:
    """A stage's deps as paths; a dep may be a plain string or a one-key mapping."""
    return [ROOT / (d if isinstance(d, str) else next(iter(d))) for d in stage.get("deps", [])]


def uncovered(files: set[Path], deps: list[Path]) -> list[str]:
    return sorted(f.relative_to(ROOT).as_posix() for f in files
                  if not any(f == d or d in f.parents for d in deps))


def missing_deps() -> dict[str, list[str]]:
    """Stage -> the module files its code imports that its deps do not cover."""
    found = {}
    for name, stage in stages().items():
        files = {project_modules()[m] for m in closure(ENTRIES[name], skip=PLUMBING)}
        if missing := uncovered(files, dep_paths(stage)):
            found[name] = missing
    return found


def test_every_stage_has_an_entry():
    assert set(stages()) == set(ENTRIES), "map each dvc.yaml stage to the modules its cmd runs"


def test_every_imported_module_is_a_dependency():
    missing = missing_deps()
    assert missing == {}, "dvc.yaml stages import modules they do not list as deps:\n" + "\n".join(
        f"  {stage}: {', '.join(files)}" for stage, files in missing.items())


def test_a_folder_dep_covers_its_files():
    files = {ROOT / "oanet/fusion/stage.py", ROOT / "oanet/metrics.py"}
    assert uncovered(files, [ROOT / "oanet/fusion"]) == ["oanet/metrics.py"]


def test_every_stage_lists_the_stage_table_its_command_calls():
    """Editing how a stage is called (oanet/stages.py; flows/stages.py for validate and register) reruns it."""
    for name, stage in stages().items():
        table = ROOT / ("flows/stages.py" if name in ("validate", "register") else "oanet/stages.py")
        assert table in dep_paths(stage), f"{name} does not list {table.relative_to(ROOT)}"
