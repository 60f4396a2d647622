"""Prefect flow `oanet-ingest`: OCR the panels, then the data-quality gate.

    oanet flow ingest [--params params.yaml] [--data DIR]

The tasks are thin wrappers around the same stage functions that `dvc repro` runs
(`oanet.ingest.stage.run` and `flows.validate.run`); Prefect adds retries on I/O,
logging and a run history.
"""
from __future__ import annotations

from dataclasses import replace

from prefect import flow, task

from oanet.config import IngestConfig, PathsConfig, ValidateConfig, load_params


def _transient_io_error(task, task_run, state) -> bool:
    """Retry a flaky file share, not a bad data folder: only OSErrors that are not 'missing'."""
    exc = state.data
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


@task(name="ocr-panels", retries=2, retry_delay_seconds=10, retry_condition_fn=_transient_io_error)
def ocr_panels(cfg: IngestConfig, paths: PathsConfig):
    from oanet.ingest.stage import run

    result = run(cfg, paths.raw, paths.ocr, paths.ocr_quarantine)
    print(result.summary())
    return result.require_rows()


@task(name="validate-table")
def validate_table(cfg: ValidateConfig, paths: PathsConfig):
    from flows.validate import run
    from oanet.layout import load_layout

    outcome = run(cfg, load_layout(paths.layout), paths)
    print(outcome.summary())
    return outcome


@flow(name="oanet-ingest", log_prints=True)
def ingest_flow(params_path: str = "params.yaml", data: str | None = None):
    params = load_params(params_path)
    paths = params.paths if data is None else replace(params.paths, raw=data)
    ocr_panels(params.ingest, paths)
    return validate_table(params.validate, paths)

