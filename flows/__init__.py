"""Orchestration: Prefect flows and the stages that need Great Expectations (and later MLflow).

Importing this package sets the offline, telemetry-free defaults (setdefault only: a
user's own values win) before Prefect is imported, because Prefect resolves its home
and result-storage folders at import time; otherwise it would write under $HOME.
"""
from oanet.env import apply_offline_defaults

apply_offline_defaults()
