"""Offline, telemetry-free defaults for every entry point (CLI, flows, DVC stages).

Called explicitly by entry points, never at import time. Values a user already set win.
"""
from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "true",                       # MLflow accepts only "true"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
}


def apply_offline_defaults(project_root: str | Path | None = None) -> dict[str, str]:
    """Switch off downloads and analytics; keep tool state inside the project, not $HOME."""
    root = Path(project_root or Path.cwd())
    values = dict(OFFLINE_DEFAULTS)
    values["PREFECT_HOME"] = str(root / ".prefect")
    values["MPLCONFIGDIR"] = str(root / ".cache" / "matplotlib")
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in values}
