"""Tracking helpers: flattened params, the data version and params hash, the tracking URI choice, the serving pins."""
from __future__ import annotations

from flows.mlflow_model import pinned_requirements
from flows.tracking import data_version, flatten, params_hash, tracking_uri
from oanet.config import RegisterConfig
from oanet.intake import dataset_version


def test_flatten_joins_nested_keys_and_keeps_lists_readable():
    flat = flatten({"fuse": {"epochs": 8, "align": True}, "bag": {"models": ["gbm", "rf"]}})
    assert flat == {"fuse.epochs": "8", "fuse.align": "True", "bag.models": '["gbm", "rf"]'}


def test_one_data_version_the_content_hash_the_nightly_uses(tmp_path):
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "labels.csv").write_text("image,label\n")
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  raw: {raw}\n")
    version = data_version(params)
    assert version == dataset_version(raw)
    (raw / "images" / "a.png").write_bytes(b"not really a png")
    assert data_version(params) != version                 # new data, new version


def test_params_hash_is_the_file_content(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("fuse:\n  epochs: 8\n")
    b.write_text("fuse:\n  epochs: 8\n")
    assert params_hash(a) == params_hash(b) and len(params_hash(a)) == 16
    b.write_text("fuse:\n  epochs: 9\n")
    assert params_hash(a) != params_hash(b)


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


def test_setup_registers_in_the_run_store_whatever_registry_was_pinned_before(tmp_path):
    """CI once registered models in another test's store: MLflow's registry URI, pinned by an earlier
    caller in the same process, outlived a later setup() that only set the tracking URI."""
    import mlflow

    from flows.tracking import setup

    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")    # conftest restores it afterwards
    ours = f"sqlite:///{tmp_path / 'ours.db'}"
    client = setup(RegisterConfig(tracking_uri=ours, experiment="x", artifact_root=str(tmp_path / "art")))
    client.create_registered_model("m")
    assert mlflow.get_registry_uri() == ours
    assert [m.name for m in mlflow.MlflowClient(tracking_uri=ours, registry_uri=ours).search_registered_models()] == ["m"]
