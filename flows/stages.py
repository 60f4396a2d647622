"""The whole pipeline's stage table: the library's stages plus validate and register, in dvc.yaml's order.

oanet/stages.py holds the stages the library can run on its own; the two here need Great
Expectations (validate) and MLflow (register), which only `flows/` may import. Their `oanet`
commands (flows/cli.py) and the Prefect tasks (flows/tasks.py) run them through this table, like
every other stage. No Prefect here: `oanet validate` and `oanet register` do not start it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from oanet.stages import STAGES as LIBRARY_STAGES
from oanet.stages import Echo, Stage, layout_path

if TYPE_CHECKING:
    from oanet.config import Params


def _validate(p: Params, params_path: Path, layout: Path | None, echo: Echo, *,
              expectations: Path = Path("expectations")) -> str:
    from flows.validate import run
    from oanet.layout import load_layout

    outcome = run(p.validate, load_layout(layout_path(p, layout)), p.paths, expectations_dir=expectations)
    return outcome.summary()


def _register(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from flows.register import run

    return run(params_path, echo=echo or print).summary()     # its notes (stale outputs, a retry) always show


PIPELINE: dict[str, Stage] = {
    **{name: LIBRARY_STAGES[name] for name in ("data", "ingest")},
    "validate": Stage(_validate, "validate", lambda f: [f.clean, f.quarantine]),
    **{name: stage for name, stage in LIBRARY_STAGES.items() if name not in ("data", "ingest")},
    "register": Stage(_register, "register", lambda f: [f.bundle]),
}
