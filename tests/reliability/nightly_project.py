"""A throw-away project folder where `oanet nightly` runs as a subprocess: data-only nights, small images.

Used by the kill test and the two-nightlies test. Each delivery follows the protocol of
incoming/README.md: images renamed into incoming/images/, then one labels-<batch>.csv renamed
into incoming/. Deliveries reuse one synthetic template (new names, same bytes), so the OCR
cache answers every night after the first and a night takes seconds.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
OANET = [sys.executable, "-c", "from flows.cli import main; main()"]


def make_project(root: Path, units: int = 40, lock_wait_s: float = 0) -> Path:
    """root/project (params, expectations, incoming/) and root/template (`units` synthetic units)."""
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    project = root / "project"
    shutil.copytree(REPO / "expectations", project / "expectations")
    (project / "incoming/images").mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(seed_demo=False, settle_s=0)
    params["nightly"].update(train=False, record_dvc=False, push=False, lock_wait_s=lock_wait_s)
    params["ingest"].update(workers=0, scheduler=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    synth(SynthConfig(n=units, seed=3, units_per_lot=20, lot_yymm="2612"), root / "template", progress=False)
    return project


def _publish(source: Path, target: Path) -> None:
    """Copy under a hidden name in the target's folder, then rename: intake never sees half a file."""
    part = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, part)
    part.rename(target)


def deliver(project: Path, template: Path, batch: str, copies: int = 1) -> list[str]:
    """`copies` x the template's units under new names `<batch>_<copy>_<name>`, by the delivery protocol
    (layout, images, then one labels-<batch>.csv): the image names delivered, in intake's (sorted) order."""
    _publish(template / "layout.yaml", project / "incoming/layout.yaml")
    labels = pd.read_csv(template / "labels.csv", dtype=str, keep_default_na=False)
    rows = []
    for copy in range(copies):
        for row in labels.to_dict("records"):
            name = f"{batch}_{copy}_{Path(row['image']).name}"
            _publish(template / row["image"], project / "incoming/images" / name)
            rows.append({**row, "image": f"images/{name}"})
    pd.DataFrame(rows).to_csv(project / "incoming" / f".labels-{batch}.csv.part", index=False)
    (project / "incoming" / f".labels-{batch}.csv.part").rename(project / "incoming" / f"labels-{batch}.csv")
    return sorted(Path(r["image"]).name for r in rows)


def env(root: Path, api_url: str | None = None) -> dict:
    values = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(root / "prefect"),
              "PREFECT_LOGGING_LEVEL": "WARNING", "MPLCONFIGDIR": str(root / "mpl")}
    values.pop("PREFECT_API_URL", None)
    if api_url:
        values["PREFECT_API_URL"] = api_url
    return values


@contextmanager
def prefect_server(root: Path):
    """One local Prefect server for every night of a test (as `oanet schedule` runs one): a night then
    starts in seconds instead of starting a temporary server of its own."""
    from flows.schedule import wait_healthy

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (root / "prefect-server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env(root), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        api_url = f"http://127.0.0.1:{port}/api"
        wait_healthy(api_url, timeout_s=120)
        yield api_url
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def start_night(project: Path, root: Path, log: Path, api_url: str | None = None) -> subprocess.Popen:
    """`oanet nightly` in its own process group, so that a kill takes its helpers (a temporary Prefect server)."""
    return subprocess.Popen([*OANET, "nightly", "--params", "params.yaml"], cwd=project, env=env(root, api_url),
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def run_night(project: Path, root: Path, log: Path, api_url: str | None = None, timeout: float = 300) -> float:
    """Run a night to its end; it must succeed. Its duration in seconds."""
    start = time.monotonic()
    night = start_night(project, root, log, api_url)
    rc = night.wait(timeout=timeout)
    assert rc == 0, f"night failed (rc {rc}):\n{log.read_text()[-3000:]}"
    return time.monotonic() - start


def raw_labels(project: Path) -> pd.DataFrame:
    path = project / "data/raw/labels.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=["image"])
