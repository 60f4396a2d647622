"""MLflow tracking set-up and lineage tags; the library never sees MLflow.

Default store: embedded, inside the project (git-ignored): SQLite at mlruns/mlflow.db and
artifacts under register.artifact_root. `MLFLOW_TRACKING_URI` (or register.tracking_uri)
points it at a team's server instead (PostgreSQL backend, S3-style artifacts).

Credentials never go into params.yaml: DVC copies the `register` section into dvc.lock
and the run logs params.yaml as MLflow params. A password belongs in $MLFLOW_TRACKING_URI
(or $MLFLOW_TRACKING_USERNAME / $MLFLOW_TRACKING_PASSWORD for a server); whatever is
logged passes through `redact` first.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from oanet.errors import OanetError

REPO = Path(__file__).resolve().parents[1]
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*):(?P<secret>[^/@\s]*)@")
_SECRET_PARAM = re.compile(r"(?P<key>(?:password|passwd|pwd|secret|token|access[_-]?key|api[_-]?key)[^=&;\s]*=)"
                           r"(?P<value>[^&;\s]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with URI passwords (scheme://user:***@host) and password=/token=-style values as ***."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['key']}***", text)


class CredentialsInParams(OanetError):
    """register.tracking_uri holds a password: it would be copied into dvc.lock and the run's params."""


def tracking_uri(cfg) -> str:
    """register.tracking_uri, else $MLFLOW_TRACKING_URI, else the project's SQLite file."""
    if cfg.tracking_uri:
        if redact(cfg.tracking_uri) != cfg.tracking_uri:
            raise CredentialsInParams(
                f"register.tracking_uri holds credentials ({redact(cfg.tracking_uri)}); DVC would write them "
                "into dvc.lock. Set MLFLOW_TRACKING_URI in the environment instead (or, for a tracking "
                "server, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) and leave tracking_uri null")
        return cfg.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path('mlruns') / 'mlflow.db').resolve()}"      # setup() makes its folder


def setup(cfg):
    """Point MLflow at the store and make sure the experiment exists; returns an MlflowClient."""
    import mlflow
    from mlflow.tracking import MlflowClient

    # Tracking and registry in one store, both set here: MLflow otherwise takes the registry from
    # whatever an earlier caller pinned in this process (or in $MLFLOW_REGISTRY_URI), and a model
    # would be registered in another store than its run.
    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(cfg.experiment) is None:
        root = Path(cfg.artifact_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        client.create_experiment(cfg.experiment, artifact_location=root.as_uri())
    mlflow.set_experiment(cfg.experiment)
    return client


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """{"fuse.optimiser.epochs": "8", ...}: nested params as MLflow params (values as short strings,
    credentials redacted: MLflow params are readable by everyone with access to the experiment)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = redact(json.dumps(v) if isinstance(v, (list, tuple)) else str(v))
    return out


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def params_hash(params_path: str | Path) -> str:
    """Which exact parameter file a run used (the tag `oanet.params_sha256`, and part of a stage's resume key)."""
    return hashlib.sha256(Path(params_path).read_bytes()).hexdigest()[:16]


def data_version(params_path: str | Path) -> str:
    """The data version (tag `oanet.data_version`): the content hash of the raw dataset named in params,
    as the nightly and the flows compute it (oanet.intake.dataset_version)."""
    from oanet.config import load_params
    from oanet.intake import dataset_version

    return dataset_version(load_params(params_path).paths.raw)


def lineage_tags(params_path: Path) -> dict[str, str]:
    from oanet.device import device_name

    return {"oanet.git_commit": _git_commit(), "oanet.data_version": data_version(params_path),
            "oanet.params_sha256": params_hash(params_path), "oanet.device": device_name()}
