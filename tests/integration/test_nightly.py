"""The nightly Prefect flow, in-process on a tiny synthetic project: intake, OCR, train, register, skip."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

N, NEW = 48, 24   # the demo set the first night starts from, and the next night's delivery


@pytest.fixture
def project(repo_root, tmp_path, monkeypatch, tiny_params):
    """A project folder (params, expectations, incoming/) with tiny training settings; cwd is it."""
    shutil.copytree(repo_root / "expectations", tmp_path / "expectations")
    (tmp_path / "incoming").mkdir()
    params = tiny_params(yaml.safe_load((repo_root / "params.yaml").read_text()), tmp_path,
                                  tmp_path / "data/raw")
    params["synth"].update(n=N, units_per_lot=8, seed=5)
    params["data"].update(settle_s=0)      # the test delivers and runs at once: nothing to wait for
    params["ingest"].update(cache=str(tmp_path / "ocr.sqlite"))
    params["paths"].update(raw="data/raw", bundle=str(tmp_path / "models/bundle"))
    params["register"].update(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "art"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _deliver(project, seed: int, n: int, incident: str = "none") -> None:
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=n, seed=seed, units_per_lot=8, lot_yymm="2612"), project / "incoming", progress=False,
          incident=incident)
    (project / "incoming" / "incident.json").unlink(missing_ok=True)      # ground truth, not a delivery


@pytest.mark.slow
def test_nightly_trains_registers_then_skips_a_night_without_data(project):
    from flows.nightly import nightly_flow
    from flows.registry import history
    from flows.tracking import setup
    from oanet.config import load_params

    first = nightly_flow("params.yaml")
    assert first.trained, first.summary()
    assert "nothing to compare" in first.drift          # the demo set was seeded, nothing trained yet
    assert "version 1 (complete)" in first.register
    assert "OCR on 48 images, 0 from cache" in first.ingest

    # a re-run on the same data, params and code reuses every finished stage (resume after a failure) ...
    fusion_metrics = project / "fusion.json"
    stamp = fusion_metrics.stat().st_mtime_ns
    from flows.train import train_flow

    assert train_flow("params.yaml", first.data_version) and fusion_metrics.stat().st_mtime_ns == stamp
    # ... except a stage whose output has gone
    (project / "split.parquet").unlink()
    train_flow("params.yaml", first.data_version)
    assert (project / "split.parquet").is_file() and fusion_metrics.stat().st_mtime_ns == stamp

    second = nightly_flow("params.yaml")
    assert not second.trained and "no new data" in second.reason
    assert "OCR on 0 images, 48 from cache" in second.ingest      # the cache, not the OCR engine
    assert second.data_version == first.data_version

    _deliver(project, seed=9, n=NEW)
    third = nightly_flow("params.yaml")
    assert third.trained and f"{NEW} new images" in third.reason
    assert f"OCR on {NEW} images, 48 from cache" in third.ingest  # only the new images were read
    assert "version 2 (complete)" in third.register
    assert f"over {NEW} rows" in third.drift and (project / "drift").is_dir()   # tonight's rows, before training
    assert not list((project / "incoming/images").glob("*"))       # moved, not copied
    assert len(pd.read_csv(project / "data/raw/labels.csv")) == N + NEW

    p = load_params("params.yaml")
    events = history(setup(p.register), p.register.model_name)
    assert {e["version"] for e in events} >= {"1", "2"}


@pytest.mark.slow
def test_a_drifted_night_is_flagged_before_anything_trains_on_it(project):
    """A moved camera on the second night: the drift step names it, flags the flow run with an artifact,
    and writes the report, on a data-only night (nothing trains, so the test stays short)."""
    from prefect.artifacts import Artifact

    from flows.nightly import nightly_flow

    params = yaml.safe_load((project / "params.yaml").read_text())
    floors = ("min_recall", "min_accuracy", "min_robust_recall", "min_robust_accuracy")
    params["register"].update(dict.fromkeys(floors, 0.0))       # the tiny first model becomes the champion
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert "PROMOTED to champion" in nightly_flow("params.yaml").register
    params["nightly"].update(train=False)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    _deliver(project, seed=13, n=NEW, incident="camera")
    night = nightly_flow("params.yaml")
    assert not night.trained and "DRIFT ALERT" in night.drift and "image:centre_x" in night.drift, night.drift
    assert "against the champion's bundle (oanet v1)" in night.drift, night.drift     # what production learned on
    assert night.drift in night.summary()
    artifact = Artifact.get("drift-alert")
    assert artifact is not None and "image:centre_x" in artifact.data
    reports = sorted((project / "drift").glob("night-*/index.html"))
    assert len(reports) == 1 and str(reports[0]) in night.drift

    # no champion to compare with (another model name): the last training's reference, which here cannot
    # be read; that is flagged the same way, and the night still takes its images
    params["register"].update(model_name="no-such-model")
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / params["paths"]["drift_reference"]).write_text('{"format": "something-else"}')
    _deliver(project, seed=17, n=8)
    night = nightly_flow("params.yaml")
    assert night.drift.startswith("DRIFT NOT COMPARED") and "not a drift reference" in night.drift, night.drift
    assert "intake: 8 new images moved in" in night.intake, night.intake
    assert Artifact.get("drift-alert").description == night.drift

