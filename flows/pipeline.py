"""Composing stage tasks into Prefect flows, shared by the train, evaluate, register and nightly flows.

This sits above flows/stages.py (which runs flows/register.py's stage) so that no stage module
has to import a flow module back: flows/register.py stays the plain DVC stage, without Prefect.
"""
from __future__ import annotations

import argparse

from prefect import flow

from flows.stages import run_stage
from oanet.config import load_params
from oanet.env import apply_offline_defaults
from oanet.intake import dataset_version


def stages_flow(stages: tuple[str, ...], params_path: str, data_version: str | None, fresh: bool) -> list[str]:
    version = data_version or dataset_version(load_params(params_path).data.raw)
    return [run_stage(name, params_path, version, fresh) for name in stages]


@flow(name="oanet-register", log_prints=True)
def register_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> str:
    """Log the run, register a challenger and apply the promotion rule, as a Prefect flow."""
    return stages_flow(("register",), params_path, data_version, fresh)[0]


def cli(flow_fn, argv: list[str] | None, doc: str) -> int:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--fresh", action="store_true", help="redo every stage, even those finished on this data")
    args = ap.parse_args(argv)
    apply_offline_defaults()
    from oanet.runlock import project_lock

    with project_lock(f"flow {flow_fn.name}", args.params):
        flow_fn(params_path=args.params, fresh=args.fresh)
    return 0
