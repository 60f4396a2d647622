"""`oanet schedule`: a local Prefect server on 127.0.0.1 that runs the nightly deployment.

The deployment (name, entry point, cron, time zone, parameters) is read from prefect.yaml,
the one place the schedule is written. The server keeps its database under PREFECT_HOME
(.prefect/ in the project); nothing here talks to Prefect Cloud or any other host.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Deployment:
    name: str
    entrypoint: str              # "flows/nightly.py:nightly_flow"
    cron: str
    timezone: str
    parameters: dict = field(default_factory=dict)

    def flow(self):
        path, attr = self.entrypoint.split(":")
        return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), attr)


def read_deployment(prefect_yaml: str | Path = "prefect.yaml", name: str = "nightly") -> Deployment:
    spec = yaml.safe_load(Path(prefect_yaml).read_text())
    for d in spec.get("deployments", []):
        if d.get("name") == name:
            schedules = d.get("schedules") or []
            if len(schedules) != 1 or "cron" not in schedules[0]:
                raise ValueError(f"{prefect_yaml}: deployment {name!r} needs exactly one cron schedule")
            return Deployment(name, d["entrypoint"], schedules[0]["cron"], schedules[0].get("timezone", "UTC"),
                              d.get("parameters") or {})
    raise ValueError(f"{prefect_yaml}: no deployment named {name!r}")


def wait_healthy(api_url: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1.0)
    raise TimeoutError(f"the Prefect server at {api_url} did not answer within {timeout_s:.0f} s")


def start_server(host: str, port: int) -> subprocess.Popen:
    """`prefect server start` bound to host:port (127.0.0.1 by default), logs in PREFECT_HOME/server.log."""
    log = Path(os.environ.get("PREFECT_HOME", ".prefect")) / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def serve(deployment: Deployment, api_url: str, echo=print) -> None:
    """Register the deployment with its cron schedule and run its flow runs here until interrupted."""
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL, temporary_settings

    echo(f"schedule: deployment {deployment.name!r} ({deployment.entrypoint}) at cron {deployment.cron!r} "
         f"{deployment.timezone}; API {api_url}\n"
         f"  in another shell: PREFECT_API_URL={api_url} prefect deployment ls")
    with temporary_settings(updates={PREFECT_API_URL: api_url}):   # settings are read once, at import
        deployment.flow().serve(name=deployment.name, parameters=deployment.parameters,
                                schedules=[Cron(deployment.cron, timezone=deployment.timezone)])
