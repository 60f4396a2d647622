"""Tracking helpers: flattened params, the DVC data hash, the tracking URI choice, the serving pins."""
from __future__ import annotations

from flows.mlflow_model import pinned_requirements
from flows.tracking import flatten, raw_data_hash, tracking_uri
from oanet.config import RegisterConfig


def test_flatten_joins_nested_keys_and_keeps_lists_readable():
    flat = flatten({"fuse": {"epochs": 8, "align": True}, "bag": {"models": ["gbm", "rf"]}})
    assert flat == {"fuse.epochs": "8", "fuse.align": "True", "bag.models": '["gbm", "rf"]'}


def test_raw_data_hash_reads_the_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  synth:\n    cmd: x\n    outs:\n    - path: data/raw\n      md5: abc.dir\n")
    assert raw_data_hash(lock) == "abc.dir"
    assert raw_data_hash(tmp_path / "absent.lock") == "untracked"


def test_tracking_uri_prefers_params_then_environment_then_the_project_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(RegisterConfig(tracking_uri="postgresql://db/mlflow")) == "postgresql://db/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(RegisterConfig()) == "http://127.0.0.1:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(RegisterConfig()) == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def test_serving_requirements_carry_the_project_pins():
    pins = pinned_requirements()
    assert "torch==2.14.1" in pins and "rapidocr==3.9.2" in pins and any(p.startswith("mlflow==") for p in pins)
