"""The pipeline's stages as Prefect tasks whose finished results survive a failed run.

One task per stage of the stage table (flows/stages.py), running the same function as the stage's
`oanet` command and its `dvc.yaml` stage, and returning the stage's printed summary. Results are
persisted (under PREFECT_HOME) with a resume key: the task's name, the parameter file's bytes, the
raw data version and the source of `oanet/` and `flows/`. Re-running a nightly run that failed
half-way therefore skips every stage that had finished on the same data, params and code, as long
as its outputs are still on disk. Training tasks never retry: a crash in training is a bug or an
out-of-memory, and retrying would only burn the night.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from prefect import task

from flows.stages import PIPELINE
from flows.tracking import params_hash
from oanet.config import load_params

PROJECT_SOURCES = (Path(__file__).resolve().parents[1] / "oanet", Path(__file__).resolve().parent)
# I/O only. The tracking store may sit on a network (PostgreSQL, S3): retry with backoff.
RETRIES = {"register": 3}
RETRY_DELAYS = [10, 30, 90]


@lru_cache(maxsize=1)
def source_hash() -> str:
    digest = hashlib.sha256()
    for folder in PROJECT_SOURCES:
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def resume_key(context, parameters: dict) -> str:
    """Prefect cache key: the same stage on the same params, data and code has the same result."""
    params_path = Path(parameters["params_path"])
    parts = [context.task.name, str(params_path.resolve()), params_hash(params_path),
             parameters["data_version"], source_hash()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _stage_task(name: str):
    stage, retries = PIPELINE[name], RETRIES.get(name, 0)

    def run_stage(params_path: str, data_version: str) -> str:
        summary = stage.run(load_params(params_path), Path(params_path), None, print)
        print(summary)
        return summary

    return task(run_stage, name=name, cache_key_fn=resume_key, persist_result=True, log_prints=True,
                retries=retries, retry_delay_seconds=RETRY_DELAYS[:retries] or 0)


TASKS = {name: _stage_task(name) for name in PIPELINE}


def run_stage(name: str, params_path: str, data_version: str, fresh: bool = False) -> str:
    """Run stage `name` as a task; a finished result is reused unless `fresh` or an output has gone."""
    outputs = PIPELINE[name].outputs(load_params(params_path).paths)
    stage = TASKS[name]
    if fresh or not all(Path(out).exists() for out in outputs):
        stage = stage.with_options(refresh_cache=True)
    return stage(params_path, data_version)
