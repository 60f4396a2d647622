"""Prefect flow `oanet-train`: split, bag, fuse and gate on the validated OCR table.

    python -m flows.train [--params params.yaml] [--fresh]

Each step is `flows.stages`' task for the same stage function `dvc repro` runs; a step
that finished on the same params, data and code is not redone (see flows/stages.py).
"""
from __future__ import annotations

import argparse
import sys

from prefect import flow

from flows.stages import run_stage
from oanet.config import load_params
from oanet.env import apply_offline_defaults
from oanet.intake import dataset_version

TRAIN_STAGES = ("split", "bag", "fuse", "gate")


def stages_flow(stages: tuple[str, ...], params_path: str, data_version: str | None, fresh: bool) -> list[str]:
    version = data_version or dataset_version(load_params(params_path).data.raw)
    return [run_stage(name, params_path, version, fresh) for name in stages]


@flow(name="oanet-train", log_prints=True)
def train_flow(params_path: str = "params.yaml", data_version: str | None = None, fresh: bool = False) -> list[str]:
    return stages_flow(TRAIN_STAGES, params_path, data_version, fresh)


def cli(flow_fn, argv: list[str] | None, doc: str) -> int:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--fresh", action="store_true", help="redo every stage, even those finished on this data")
    args = ap.parse_args(argv)
    apply_offline_defaults()
    from oanet.runlock import project_root, run_lock

    with run_lock(f"flow {flow_fn.name}", wait_s=load_params(args.params).nightly.lock_wait_s,
                  root=project_root(args.params)):
        flow_fn(params_path=args.params, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(cli(train_flow, None, __doc__))
