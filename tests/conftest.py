"""Shared fixtures: a small generated AOI set, one OCR engine, one ingest run (all session-wide).

Building the OCR engine imports cnocr (~5 s) and the first ingest OCRs every image, so
both are done once and reused; tests that need their own folder copy from `synth_set`.
Fixtures are generated, never downloaded.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 12


@pytest.fixture(scope="session", autouse=True)
def _offline_env(tmp_path_factory):
    """No downloads, no telemetry, tool state in a temporary folder (never $HOME)."""
    from oanet.env import apply_offline_defaults

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Prefect logs "Stopping temporary server" at exit, after pytest closed its streams.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env = tmp_path_factory.mktemp("env")
    os.environ["PREFECT_HOME"] = str(env / ".prefect")   # flows run in-process against a throw-away home
    apply_offline_defaults(env)


_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _mlflow_uri_state() -> tuple:
    """MLflow's process-wide tracking and registry URIs (None: never set) and their variables."""
    import sys

    env = tuple(os.environ.get(key) for key in _MLFLOW_ENV)
    if "mlflow" not in sys.modules:
        return env, None, None
    from mlflow.tracking._model_registry import utils as registry_utils  # private, but the only way
    from mlflow.tracking._tracking_service import utils as tracking_utils  # to tell "never set"

    return env, tracking_utils._tracking_uri, registry_utils._registry_uri


@pytest.fixture(autouse=True)
def _mlflow_uris_restored():
    """MLflow keeps its tracking and registry URIs process-wide (and set_registry_uri also exports
    $MLFLOW_REGISTRY_URI): a test that points them at its store would send a later test's model
    to the wrong registry (seen in CI). After every test they are back to what they were before it
    (what a module's store fixture set stays set for that module's tests)."""
    env, tracking, registry = _mlflow_uri_state()
    yield
    for key, value in zip(_MLFLOW_ENV, env, strict=True):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    import sys

    if "mlflow" in sys.modules:
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri, registry_utils._registry_uri = tracking, registry


@pytest.fixture(scope="session")
def _torch_default_threads() -> int:
    import torch

    return torch.get_num_threads()          # what a fresh process (a fresh `oanet train`) runs with


@pytest.fixture(autouse=True)
def _torch_threads_restored(_torch_default_threads):
    """torch's thread count is process-wide: a test that lowers it (the in-process Dask worker pins one
    thread) would leave every later in-process training slower and on other float reduction orders."""
    import torch

    yield
    if torch.get_num_threads() != _torch_default_threads:
        torch.set_num_threads(_torch_default_threads)


@pytest.fixture
def default_params(tmp_path) -> Path:
    """An empty params file: every setting at its default (a named --params file must exist)."""
    path = tmp_path / "defaults.yaml"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory) -> Path:
    """~12 procedural clean-preset AOI images with labels.csv, truth.csv and layout.yaml."""
    from oanet.config import SynthConfig
    from oanet.synth.stage import run

    out = tmp_path_factory.mktemp("synth") / "aoi"
    run(SynthConfig(n=N_IMAGES, seed=11, preset="clean"), out, progress=False)
    return out


@pytest.fixture(scope="session")
def truth(synth_set) -> pd.DataFrame:
    return pd.read_csv(synth_set / "truth.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def ocr_cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cnocr")


@pytest.fixture(scope="session")
def ocr(synth_set, ocr_cache_root):
    """One CnOCR engine on the bundled models, reading the characters ingest reads for the
    generated layout (ingest.charset: layout), built eagerly (the import is the slow part)."""
    from oanet.ingest.engine import Ocr
    from oanet.ingest.head import layout_charset
    from oanet.layout import load_layout

    engine = Ocr(cache_root=ocr_cache_root, charset=layout_charset(load_layout(synth_set / "layout.yaml")))
    engine.cnocr  # noqa: B018 - build now, so the first test using it does not pay for it
    return engine


@dataclass(frozen=True)
class IngestRun:
    data: Path
    cfg: object          # IngestConfig
    result: object       # IngestResult
    table: pd.DataFrame
    quarantine: pd.DataFrame


@pytest.fixture(scope="session")
def ingest_run(synth_set, ocr, tmp_path_factory) -> IngestRun:
    """The ingest stage on `synth_set`, with a fresh cache in a temporary folder."""
    from oanet.config import IngestConfig
    from oanet.ingest.stage import run

    work = tmp_path_factory.mktemp("ingest")
    cfg = IngestConfig(cache=str(work / "ocr.sqlite"))
    result = run(cfg, synth_set, work / "ocr.parquet", work / "quarantine.parquet", ocr=ocr)
    return IngestRun(synth_set, cfg, result, pd.read_parquet(result.out), pd.read_parquet(result.quarantine))


@contextmanager
def _trivial_model_store(root: Path, experiment_name: str, run_names, failed=()):
    """A fresh SQLite MLflow store with one trivial model logged per run name:
    yields (client, {run name: run id}); the runs named in `failed` end FAILED."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    class Zeros(mlflow.pyfunc.PythonModel):
        # Without a type hint MLflow warns on class creation and again on every unpickling,
        # under its own "once" filter, which no pytest filter can silence. The hint is a
        # string here (__future__ annotations), so `pd` must be a module-level name.
        def predict(self, model_input: pd.DataFrame, params=None) -> list[float]:
            return [0.0] * len(model_input)

    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(experiment_name, artifact_location=str(root / "artifacts"))
    previous = mlflow.get_tracking_uri()      # logging a model goes through the fluent API: the global URI
    mlflow.set_tracking_uri(uri)
    try:
        runs = {}
        for name in run_names:
            with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
                mlflow.pyfunc.log_model(name="model", python_model=Zeros(), pip_requirements=[])
            if name in failed:
                client.set_terminated(run.info.run_id, status="FAILED")
            runs[name] = run.info.run_id
        yield client, runs
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def trivial_model_store():
    """The factory `_trivial_model_store(root, experiment, run names, failed=())`, a context manager."""
    return _trivial_model_store
