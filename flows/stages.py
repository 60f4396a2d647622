"""The pipeline's stages as Prefect tasks whose finished results survive a failed run.

Each task runs one library stage function, exactly as its `dvc.yaml` stage does, and
returns the stage's printed summary. Results are persisted (under PREFECT_HOME) with a
resume key: the task's name, the parameter file's bytes, the raw data version and the
source of `oanet/` and `flows/`. Re-running a nightly run that failed half-way therefore
skips every stage that had finished on the same data, params and code, as long as its
outputs are still on disk. Training tasks never retry: a crash in training is a bug or
an out-of-memory, and retrying would only burn the night.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from prefect import task

from oanet.config import Params, load_params

PROJECT_SOURCES = (Path(__file__).resolve().parents[1] / "oanet", Path(__file__).resolve().parent)


@lru_cache(maxsize=1)
def source_hash() -> str:
    digest = hashlib.sha256()
    for folder in PROJECT_SOURCES:
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _layout(p: Params) -> Path:
    return Path(p.fuse.data) / "layout.yaml"


def _split(p: Params) -> str:
    from oanet import split

    return split.describe(split.run(p.split, _layout(p)))


def _bag(p: Params) -> str:
    from oanet.tabular.stage import run

    return run(p.bag, _layout(p)).summary()


def _fuse(p: Params) -> str:
    from oanet.fusion.stage import run

    return run(p.fuse, _layout(p), echo=print).summary()


def _gate(p: Params) -> str:
    from oanet.gate.stage import run

    return run(p.gate).summary()


def _evaluate(p: Params) -> str:
    from oanet.evaluate.stage import run

    return run(p, Path(p.evaluate.data) / "layout.yaml", echo=print).summary()


def _report(p: Params) -> str:
    from oanet import report

    return report.table(report.run(p.bag.metrics, p.fuse.metrics, p.report.out, p.gate.metrics))


def _register(p: Params, params_path: str) -> str:
    from flows.register import run

    return run(params_path).summary()


@dataclass(frozen=True)
class Stage:
    run: Callable[..., str]                   # (params) or, with needs_path, (params, params_path)
    outputs: Callable[[Params], list[str]]    # what must still exist for a finished result to count
    retries: int = 0                          # I/O only; training never retries
    needs_path: bool = False


STAGES = {
    "split": Stage(_split, lambda p: [p.split.out]),
    "bag": Stage(_bag, lambda p: [p.bag.metrics, p.bag.predictions, p.bag.out_dir]),
    "fuse": Stage(_fuse, lambda p: [p.fuse.metrics, p.fuse.predictions, p.fuse.out_dir]),
    "gate": Stage(_gate, lambda p: [p.gate.metrics, p.gate.out, p.gate.predictions]),
    "evaluate": Stage(_evaluate, lambda p: [p.evaluate.metrics]),
    "report": Stage(_report, lambda p: [p.report.out]),
    # The tracking store may sit on a network (PostgreSQL, S3): retry with backoff.
    "register": Stage(_register, lambda p: [p.register.bundle_dir], retries=3, needs_path=True),
}
RETRY_DELAYS = [10, 30, 90]


def resume_key(context, parameters: dict) -> str:
    """Prefect cache key: the same stage on the same params, data and code has the same result."""
    parts = [context.task.name, str(Path(parameters["params_path"]).resolve()), hashlib.sha256(Path(parameters["params_path"]).read_bytes()).hexdigest(),
             parameters["data_version"], source_hash()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _stage_task(name: str):
    stage = STAGES[name]

    def run_stage(params_path: str, data_version: str) -> str:
        p = load_params(params_path)
        summary = stage.run(p, params_path) if stage.needs_path else stage.run(p)
        print(summary)
        return summary

    return task(run_stage, name=name, cache_key_fn=resume_key, persist_result=True, log_prints=True,
                retries=stage.retries, retry_delay_seconds=RETRY_DELAYS[:stage.retries] or 0)


TASKS = {name: _stage_task(name) for name in STAGES}


def run_stage(name: str, params_path: str, data_version: str, fresh: bool = False) -> str:
    """Run stage `name` as a task; a finished result is reused unless `fresh` or an output has gone."""
    outputs = STAGES[name].outputs(load_params(params_path))
    stage = TASKS[name]
    if fresh or not all(Path(out).exists() for out in outputs):
        stage = stage.with_options(refresh_cache=True)
    return stage(params_path, data_version)
