"""Prefect flow `oanet-evaluate`: the paper's evaluation protocol and the metrics report.

    oanet flow evaluate [--params params.yaml] [--fresh]
"""
from __future__ import annotations

from prefect import flow

from flows.pipeline import stages_flow

EVALUATE_STAGES = ("evaluate", "report")


@flow(name="oanet-evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> list[str]:
    return stages_flow(EVALUATE_STAGES, params_path, data_version, fresh)
