"""Composing stage tasks into Prefect flows, shared by the train, evaluate, register and nightly flows.

This sits above flows/tasks.py (whose register task runs flows/register.py's stage) so that no stage
module has to import a flow module back: flows/register.py stays the plain stage, without Prefect.
`oanet flow train|evaluate|register` (flows/cli.py) run these flows from the command line.
"""
from __future__ import annotations

from prefect import flow

from flows.tasks import run_stage
from oanet.config import load_params
from oanet.intake import dataset_version


def stages_flow(stages: tuple[str, ...], params_path: str, data_version: str | None, fresh: bool) -> list[str]:
    version = data_version or dataset_version(load_params(params_path).paths.raw)
    return [run_stage(name, params_path, version, fresh) for name in stages]


@flow(name="oanet-register", log_prints=True)
def register_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> str:
    """Log the run, register a challenger and apply the promotion rule, as a Prefect flow."""
    return stages_flow(("register",), params_path, data_version, fresh)[0]
