"""The library's stages, each written once: name -> function -> params.yaml section.

Every caller runs a stage through this table: its `oanet <stage>` command (oanet/cli.py), `oanet
train`, and the Prefect tasks (flows/tasks.py). So changing how a stage is called (which config
it gets, which layout it reads, what it prints) means changing one function here.

A stage function has one signature, `(params, params_path, layout, echo) -> summary`:
- `params`: the loaded `Params`, with any command-line overrides already applied; the function
  hands the library code only the sections it needs;
- `params_path`: the parameter file itself (only `register` reads it: it logs and hashes it);
- `layout`: a layout file to use instead of the stage's default `<images>/layout.yaml`;
- `echo`: where progress lines go while the stage runs (None: quiet);
and returns the summary the caller prints. Options only one stage has are keyword-only.

The validate and register stages need Great Expectations and MLflow, which `oanet/` never imports,
not even inside a function (tests/unit/test_import_rules.py). So this table holds the library's
stages, and flows/stages.py extends it with those two into the whole pipeline, in dvc.yaml's order.
The alternative, one table in flows/, would make `oanet train` and every stage command depend on
the orchestration package, and the library could no longer run on its own.

Nothing heavy is imported here: each function imports its stage when it runs, so `oanet --help`
stays fast.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oanet.config import Params

Echo = Callable[[str], None] | None


@dataclass(frozen=True)
class Stage:
    run: Callable[..., str]                    # (params, params_path, layout, echo, **options) -> summary
    section: str                               # the params.yaml section it is configured by (dvc.yaml `params:`)
    outputs: Callable[[Params], list[str]]     # what it writes; a finished result counts only while they exist


def layout_path(p: Params, layout: Path | None = None) -> Path:
    """The layout a stage reads: the one given, else the `layout.yaml` of the raw set (paths.raw)."""
    return Path(layout) if layout else p.paths.layout


def _data(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.intake import run

    return run(p.data, p.synth).summary()


def _ingest(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.ingest.stage import run

    return run(p.ingest, p.ingest.data, p.ingest.out, p.ingest.quarantine, layout_path=layout).summary()


def _split(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.split import describe, run

    return describe(run(p.split, layout_path(p, layout))) + f"\n  written: {p.split.out}"


def _bag(p: Params, params_path: Path, layout: Path | None, echo: Echo, *, n_jobs: int = 1) -> str:
    from oanet.tabular.stage import run

    return run(p.bag, layout_path(p, layout), n_jobs=n_jobs).summary()


def _fuse(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.fusion.stage import run

    return run(p.fuse, layout_path(p, layout), echo=echo).summary()


def _gate(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.gate.stage import run

    return run(p.gate).summary()


def _drift(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.drift.stage import pipeline_stage

    reference, result = pipeline_stage(p.drift, p.gate, layout_path(p, layout))
    return (f"drift: reference of {reference.n_rows} train rows written to {p.drift.reference}\n"
            f"  test rows: {result.line()}\n  written: {result.page}, {result.summary_path}")


def _evaluate(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.evaluate.stage import run

    return run(p, layout_path(p, layout), echo=echo).summary()


def _report(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.report import run, table

    return table(run(p.bag.metrics, p.fuse.metrics, p.report.out, p.gate.metrics)) + f"\n  written: {p.report.out}"


STAGES: dict[str, Stage] = {     # in the order they run
    "data": Stage(_data, "data", lambda p: [p.data.raw]),
    "ingest": Stage(_ingest, "ingest", lambda p: [p.ingest.out, p.ingest.quarantine]),
    "split": Stage(_split, "split", lambda p: [p.split.out]),
    "bag": Stage(_bag, "bag", lambda p: [p.bag.metrics, p.bag.predictions, p.bag.out_dir]),
    "fuse": Stage(_fuse, "fuse", lambda p: [p.fuse.metrics, p.fuse.predictions, p.fuse.out_dir]),
    "gate": Stage(_gate, "gate", lambda p: [p.gate.metrics, p.gate.out, p.gate.predictions]),
    "drift": Stage(_drift, "drift", lambda p: [p.drift.reference, f"{p.drift.out_dir}/test-rows/summary.json"]),
    "evaluate": Stage(_evaluate, "evaluate", lambda p: [p.evaluate.metrics]),
    "report": Stage(_report, "report", lambda p: [p.report.out]),
}
MODEL_STAGES = ("split", "bag", "fuse", "gate", "drift")   # the models and their drift reference: the train flow
TRAIN_STAGES = (*MODEL_STAGES, "report")            # `oanet train`: the models and their metrics table
