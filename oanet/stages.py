"""The library's stages, each written once: name -> function -> params.yaml section.

Every caller runs a stage through this table: its `oanet <stage>` command (oanet/cli.py), `oanet
train`, and the Prefect tasks (flows/tasks.py). So changing how a stage is called (which config
it gets, which layout it reads, what it prints) means changing one function here.

A stage function has one signature, `(params, params_path, layout, echo) -> summary`:
- `params`: the loaded `Params`, with any command-line overrides already applied; the function
  hands the library code only the sections it needs, and `params.paths`: the files it reads and writes;
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
    from oanet.config import Params, PathsConfig

Echo = Callable[[str], None] | None


@dataclass(frozen=True)
class Stage:
    run: Callable[..., str]                    # (params, params_path, layout, echo, **options) -> summary
    section: str | None                        # the params.yaml section it is configured by (dvc.yaml `params:`)
    outputs: Callable[[PathsConfig], list[str]]  # what it writes; a finished result counts only while they exist


def layout_path(p: Params, layout: Path | None = None) -> Path:
    """The layout a stage reads: the one given, else the `layout.yaml` of the raw set (paths.raw)."""
    return Path(layout) if layout else p.paths.layout


def _data(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.intake import run

    return run(p.data, p.synth, p.paths).summary()


def _ingest(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.ingest.stage import run

    return run(p.ingest, p.paths.raw, p.paths.ocr, p.paths.ocr_quarantine, layout_path=layout).require_rows().summary()


def _split(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.split import describe, run

    return describe(run(p.split, p.paths, layout_path(p, layout))) + f"\n  written: {p.paths.split}"


def _bag(p: Params, params_path: Path, layout: Path | None, echo: Echo, *, n_jobs: int = 1) -> str:
    from oanet.tabular.stage import run

    return run(p.bag, p.paths, layout_path(p, layout), n_jobs=n_jobs).summary()


def _fuse(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.fusion.stage import run

    return run(p.fuse, p.paths, layout_path(p, layout), echo=echo).summary()


def _gate(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.gate.stage import run

    return run(p.gate, p.paths).summary()


def _drift(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.drift.stage import pipeline_stage

    reference, result = pipeline_stage(p.drift, p.paths, layout_path(p, layout))
    return (f"drift: reference of {reference.n_rows} train rows written to {p.paths.drift_reference}\n"
            f"  test rows: {result.line()}\n  written: {result.page}, {result.summary_path}")


def _evaluate(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.evaluate.stage import run

    return run(p, layout_path(p, layout), echo=echo).summary()


def _report(p: Params, params_path: Path, layout: Path | None, echo: Echo) -> str:
    from oanet.report import run, table

    paths = p.paths
    merged = run(paths.bag_metrics, paths.fusion_metrics, paths.metrics, paths.gate_metrics)
    return table(merged) + f"\n  written: {paths.metrics}"


STAGES: dict[str, Stage] = {     # in the order they run; outputs from the paths section
    "data": Stage(_data, "data", lambda f: [f.raw]),
    "ingest": Stage(_ingest, "ingest", lambda f: [f.ocr, f.ocr_quarantine]),
    "split": Stage(_split, "split", lambda f: [f.split]),
    "bag": Stage(_bag, "bag", lambda f: [f.bag_metrics, f.bag_predictions, f.bag_models]),
    "fuse": Stage(_fuse, "fuse", lambda f: [f.fusion_metrics, f.fusion_predictions, f.fusion_models]),
    "gate": Stage(_gate, "gate", lambda f: [f.gate_metrics, f.gate, f.gate_predictions]),
    "drift": Stage(_drift, "drift", lambda f: [f.drift_reference, f"{f.drift_reports}/test-rows/summary.json"]),
    "evaluate": Stage(_evaluate, "evaluate", lambda f: [f.evaluation]),
    "report": Stage(_report, None, lambda f: [f.metrics]),
}
MODEL_STAGES = ("split", "bag", "fuse", "gate", "drift")   # the models and their drift reference: the train flow
TRAIN_STAGES = (*MODEL_STAGES, "report")            # `oanet train`: the models and their metrics table
