"""`oanet schedule` serves the nightly deployment: started, listed through the Prefect API, stopped.

The command runs as a subprocess on a free loopback port with a throw-away PREFECT_HOME; the
deployment is read back from the server's REST API (what `prefect deployment ls` shows), then
Ctrl-C (SIGINT) stops the command and, with it, the server it started.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_schedule_serves_the_nightly_deployment_and_stops_with_its_server(repo_root, tmp_path):
    from flows.schedule import read_deployment

    expected = read_deployment(repo_root / "prefect.yaml")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PYTHONPATH": str(repo_root), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_LOGGING_LEVEL": "WARNING", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "schedule.log"
    command = subprocess.Popen([sys.executable, "-c", "from flows.cli import main; main()", "schedule",
                                "--port", str(port), "--prefect-yaml", str(repo_root / "prefect.yaml")],
                               cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline, listed = time.monotonic() + 180, []
        while not listed:
            assert command.poll() is None, f"oanet schedule exited ({command.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no deployment listed in 180 s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
            if _answers(f"{api}/health"):
                listed = _api(f"{api}/deployments/filter", {})
        assert [d["name"] for d in listed] == [expected.name]
        deployment = listed[0]
        assert _api(f"{api}/flows/{deployment['flow_id']}")["name"] == "oanet-nightly"
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == [expected.cron]
        assert deployment["schedules"][0]["schedule"]["timezone"] == expected.timezone
        assert deployment["parameters"] == expected.parameters

        command.send_signal(signal.SIGINT)                     # Ctrl-C
        command.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _answers(f"{api}/health"):                       # the server went with the command
            assert time.monotonic() < deadline, "the Prefect server still answers after oanet schedule stopped"
            time.sleep(0.5)
    finally:
        try:
            os.killpg(command.pid, signal.SIGKILL)             # whatever is left of the command's group
        except ProcessLookupError:
            pass
        command.wait(timeout=30)
