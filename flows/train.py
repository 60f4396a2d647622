"""Prefect flow `oanet-train`: split, bag, fuse and gate on the validated OCR table.

    oanet flow train [--params params.yaml] [--fresh]

Each step is `flows.tasks`' task for the same stage function `dvc repro` runs; a step
that finished on the same params, data and code is not redone (see flows/tasks.py).
"""
from __future__ import annotations

from prefect import flow

from flows.pipeline import stages_flow
from oanet.stages import MODEL_STAGES


@flow(name="oanet-train", log_prints=True)
def train_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> list[str]:
    return stages_flow(MODEL_STAGES, params_path, data_version, fresh)
