"""The whole pipeline under DVC, in a copy of the project with tiny params (48 images, one epoch).

One module fixture runs, in order, in a `dvc init`'ed copy with a local DVC remote:
`oanet nightly` (the demo set, OCR, every stage, `dvc commit` and `dvc push`), `dvc status`
(clean) and `dvc repro` (nothing to run), then `fuse.optimiser.epochs` edited in params.yaml and
`dvc repro` (fuse and what reads its outputs or its params, nothing before it), then a second
`dvc repro` (nothing). The nightly trains the first models, so the whole pipeline runs once
and the test stays within minutes. The tests read what the fixture recorded, so they pass in
any order. Which stages ran is read from DVC's own "Running stage" lines, never from the
stage commands, so a stage may change its command freely.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]   # the fixture runs the pipeline about twice

N = 48                    # the demo set (6 lots of 8)
UP_TO_DATE = "Data and pipelines are up to date."


@dataclass
class Record:
    project: Path
    stages: list[str]                          # dvc.yaml's stages, in order
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    clean_rows: int = 0                        # data/clean.parquet after the nightly

    def step(self, name: str) -> subprocess.CompletedProcess:
        if name not in self.runs:                  # an earlier step failed and the fixture stopped there
            night = self.runs["nightly"]
            pytest.fail(f"`oanet nightly` failed:\n{night.stdout[-3000:]}\n{night.stderr[-3000:]}")
        return self.runs[name]

    def ran(self, step: str) -> list[str]:
        out = self.step(step)
        assert out.returncode == 0, f"{step} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return re.findall(r"Running stage '([\w-]+)'", out.stdout)


@pytest.fixture(scope="module")
def dvc_project(repo_root, tmp_path_factory, tiny_sizes):
    root = tmp_path_factory.mktemp("dvc-pipeline")
    project = root / "project"
    for name in ("oanet", "flows", "expectations", "incoming"):
        shutil.copytree(repo_root / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "requirements.txt", "pyproject.toml", "prefect.yaml"):   # register pins requirements
        shutil.copy(repo_root / name, project / name)
    params = tiny_sizes(yaml.safe_load((repo_root / "params.yaml").read_text()))
    params["synth"].update(n=N, units_per_lot=8, seed=5)
    params["data"].update(settle_s=0)          # nothing is being delivered: nothing to wait for
    params["nightly"].update(lock_wait_s=0, record_dvc=True, push=True, train=True)
    params["evaluate"]["quick"].update(repeats=1)             # the protocol's tables, once
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(project),         # the stage code is the copy DVC hashes, not the checkout
           "DVC_NO_ANALYTICS": "1", "PREFECT_HOME": str(root / "prefect"), "PREFECT_LOGGING_LEVEL": "WARNING",
           "MPLCONFIGDIR": str(root / "mpl")}
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(key, None)                     # the project's own store (mlruns/) and a temporary server

    def sh(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=900)

    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    record = Record(project, stages)
    for cmd in (("dvc", "init", "--no-scm", "-q"), ("dvc", "remote", "add", "-d", "store", str(root / "remote"))):
        done = sh(*cmd)
        assert done.returncode == 0, done.stdout + done.stderr
    record.runs["nightly"] = sh(sys.executable, "-c", "from flows.cli import main; main()", "nightly")
    if record.runs["nightly"].returncode:
        return record                          # the tests report it
    record.runs["status after nightly"] = sh("dvc", "status")
    record.runs["remote status after nightly"] = sh("dvc", "status", "--cloud")
    record.runs["repro after nightly"] = sh("dvc", "repro")
    record.clean_rows = len(pd.read_parquet(project / "data/clean.parquet"))
    params["fuse"]["optimiser"]["epochs"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    record.runs["fuse.optimiser.epochs"] = sh("dvc", "repro")
    record.runs["again"] = sh("dvc", "repro")
    record.runs["status after repro"] = sh("dvc", "status")
    return record


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def _param_keys(entries) -> set[str]:
    keys = set()
    for e in entries or []:
        keys |= {k for values in e.values() for k in values} if isinstance(e, dict) else {str(e)}
    return keys


def after_a_param(stages: dict, section: str, key: str) -> set[str]:
    """The stages that read `section.key` (or the whole section) and every stage downstream of them."""
    def under(dep: str, out: str) -> bool:
        return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")

    reran = {name for name, s in stages.items() if {section, f"{section}.{key}"} & _param_keys(s.get("params"))}
    while True:
        outs = [o for name in reran for kind in ("outs", "metrics", "plots") for o in _paths(stages[name].get(kind))]
        more = {name for name, s in stages.items()
                if any(under(d, o) for d in _paths(s.get("deps")) for o in outs)} - reran
        if not more:
            return reran
        reran |= more


def test_a_nightly_in_a_dvc_project_records_every_stage_and_leaves_dvc_status_clean(dvc_project):
    night = dvc_project.step("nightly")
    said = night.stdout + night.stderr
    assert night.returncode == 0, said[-3000:]
    assert "no model on this data yet" in said and "dvc: committed every stage" in said
    project = dvc_project.project
    assert dvc_project.clean_rows + len(pd.read_parquet(project / "data/quarantine.parquet")) == N
    assert set(yaml.safe_load((project / "dvc.lock").read_text())["stages"]) == set(dvc_project.stages)
    status = dvc_project.step("status after nightly")
    assert status.returncode == 0 and UP_TO_DATE in status.stdout, status.stdout + status.stderr
    assert dvc_project.ran("repro after nightly") == []
    remote = dvc_project.step("remote status after nightly")          # `dvc push` ran: the remote has it all
    assert remote.returncode == 0 and "Cache and remote 'store' are in sync." in remote.stdout, \
        remote.stdout + remote.stderr


def test_a_changed_fuse_param_reruns_fuse_and_the_stages_after_it_only(dvc_project):
    stages = yaml.safe_load((dvc_project.project / "dvc.yaml").read_text())["stages"]
    expected = after_a_param(stages, "fuse", "optimiser.epochs")
    # the promise, whatever dvc.yaml grows: nothing before fuse reruns; fuse, the gate on its models,
    # the report and the registration do (evaluate too: its recipe starts from the fuse section)
    assert {"fuse", "gate", "report", "register"} <= expected
    assert not expected & {"data", "ingest", "validate", "split", "bag"}
    ran = dvc_project.ran("fuse.optimiser.epochs")
    assert sorted(ran) == sorted(expected)
    assert ran.index("fuse") < ran.index("gate") < ran.index("report") < ran.index("register")
    metrics = yaml.safe_load((dvc_project.project / "reports/fusion_metrics.json").read_text())
    assert metrics["settings"]["optimiser"]["epochs"] == 2


def test_a_second_repro_runs_nothing(dvc_project):
    assert dvc_project.ran("again") == []
    assert UP_TO_DATE in dvc_project.step("status after repro").stdout
