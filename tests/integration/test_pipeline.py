"""The same stage functions run by `dvc repro` and by the Prefect flow, end to end on 24 images."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

N = 24   # validate.min_rows is 20


def _params(tmp: Path, cache: Path) -> dict:
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["synth"]["n"] = N
    params["ingest"]["cache"] = str(cache)
    return params


@pytest.mark.slow
def test_dvc_repro_runs_the_data_stages_and_then_nothing(repo_root, tmp_path):
    for name in ("oanet", "flows", "expectations", "incoming"):
        shutil.copytree(repo_root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo_root / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params(tmp_path, tmp_path / "ocr-cache.sqlite")))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd):
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    assert sh("git", "init", "-q").returncode == 0
    assert sh("dvc", "init", "-q").returncode == 0
    first = sh("dvc", "repro", "validate")   # the data stages; training has its own tests
    assert first.returncode == 0, first.stdout + first.stderr
    for stage in ("data", "ingest", "validate"):
        assert f"Running stage '{stage}'" in first.stdout
    clean = pd.read_parquet(tmp_path / "data/clean.parquet")
    quarantine = pd.read_parquet(tmp_path / "data/quarantine.parquet")
    assert len(clean) + len(quarantine) == N
    assert (tmp_path / "reports/validation/summary.md").exists()
    second = sh("dvc", "repro", "validate")
    assert second.returncode == 0
    assert "Running stage" not in second.stdout   # nothing changed, nothing re-runs


@pytest.mark.slow
def test_prefect_flow_ocrs_then_validates(repo_root, tmp_path, monkeypatch):
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    data = tmp_path / "aoi"
    synth(SynthConfig(n=N, seed=3), data, progress=False)
    params = _params(tmp_path, tmp_path / "ocr-cache.sqlite")
    params["paths"].update(raw=str(data), ocr=str(tmp_path / "ocr.parquet"), ocr_quarantine=str(tmp_path / "q.parquet"),
                           clean=str(tmp_path / "clean.parquet"), quarantine=str(tmp_path / "quarantine.parquet"),
                           validation_reports=str(tmp_path / "reports"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(repo_root)   # the flow reads expectations/ from the project

    from flows.ingest import ingest_flow

    outcome = ingest_flow(str(tmp_path / "params.yaml"))
    assert outcome.n_input == N
    assert outcome.n_clean + outcome.n_gx_quarantine == N
    assert not [f for f in outcome.failed if f.critical]
    assert len(pd.read_parquet(tmp_path / "clean.parquet")) == outcome.n_clean
