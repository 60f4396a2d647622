"""Prefect flow `oanet-train`: split, bag, fuse and gate on the validated OCR table.

    python -m flows.train [--params params.yaml] [--fresh]

Each step is `flows.stages`' task for the same stage function `dvc repro` runs; a step
that finished on the same params, data and code is not redone (see flows/stages.py).
"""
from __future__ import annotations

import sys

from prefect import flow

from flows.pipeline import cli, stages_flow

TRAIN_STAGES = ("split", "bag", "fuse", "gate")
__all__ = ["TRAIN_STAGES", "cli", "stages_flow", "train_flow"]   # cli, stages_flow: moved to flows.pipeline


@flow(name="oanet-train", log_prints=True)
def train_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> list[str]:
    return stages_flow(TRAIN_STAGES, params_path, data_version, fresh)


if __name__ == "__main__":
    sys.exit(cli(train_flow, None, __doc__))
