"""Finding 1: one writer at a time. A second run is refused (or waits) and names the holder; a killed
holder leaves no stale lock; the lock is re-entrant within a process; two `oanet nightly` started
together: one runs, the other refuses naming it, and nothing is lost."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from nightly_project import REPO, deliver, env, make_project, prefect_server, raw_labels

HOLD = ("import sys, time\nfrom oanet.runlock import run_lock\n"
        "with run_lock('oanet nightly'):\n    print('held', flush=True)\n    time.sleep(float(sys.argv[1]))\n")


def _holder(cwd: Path, seconds: float) -> subprocess.Popen:
    """Another process that takes the project lock in `cwd` and keeps it for `seconds`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], cwd=cwd, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    from oanet.runlock import LockBusy, acquire, release

    holder = _holder(tmp_path, 60)
    try:
        with pytest.raises(LockBusy) as refused:
            acquire("oanet data", wait_s=0, root=tmp_path)
        message = str(refused.value)
        assert f"another run holds the project lock: pid {holder.pid} 'oanet nightly' since " in message
        assert f"on host {socket.gethostname()}" in message
    finally:
        holder.send_signal(signal.SIGKILL)      # no clean-up runs: the kernel drops the flock with the process
        holder.wait()
    release(acquire("oanet data", wait_s=0, root=tmp_path))


def test_the_lock_is_reentrant_within_a_process_and_a_waiting_run_gets_it_when_the_holder_ends(tmp_path):
    from oanet.runlock import LockBusy, acquire, run_lock

    with run_lock("oanet nightly", root=tmp_path):
        with run_lock("oanet data", root=tmp_path):       # the flow runs stage code that locks again
            pass
    holder = _holder(tmp_path, 1.5)
    start = time.monotonic()
    with run_lock("oanet nightly", wait_s=60, root=tmp_path):
        assert time.monotonic() - start >= 0.5
    holder.wait()
    holder = _holder(tmp_path, 60)
    try:
        with pytest.raises(LockBusy, match=r"waited 1 s"):
            acquire("oanet nightly", wait_s=1, root=tmp_path)
    finally:
        holder.kill()
        holder.wait()


def test_oanet_data_refuses_while_another_run_holds_the_project(tmp_path):
    incoming = tmp_path / "incoming"
    from oanet.config import SynthConfig
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=3, seed=2, units_per_lot=3), incoming, progress=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"settle_s": 0}, "nightly": {"lock_wait_s": 0},
                                                          "synth": {"n": 3, "units_per_lot": 3}}))
    holder = _holder(tmp_path, 60)
    try:
        done = subprocess.run([sys.executable, "-m", "oanet.cli", "data"], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"another run holds the project lock: pid {holder.pid} 'oanet nightly'" in done.stderr
    assert len(list((incoming / "images").iterdir())) == 3 and not (tmp_path / "data/raw").exists()


@pytest.mark.slow
def test_two_nightlies_started_together_one_runs_the_other_refuses_naming_it_and_nothing_is_lost(tmp_path):
    project = make_project(tmp_path, units=40, lock_wait_s=0)
    names = deliver(project, tmp_path / "template", "n1", copies=5)
    command = [sys.executable, "-c", "from flows.cli import main; main()", "nightly"]
    with prefect_server(tmp_path) as api_url:
        nights = [subprocess.Popen(command, cwd=project, env=env(tmp_path, api_url), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [night.communicate(timeout=300)[0] for night in nights]
    codes = sorted(night.returncode for night in nights)
    assert codes == [0, 2], outputs
    winner, loser = (0, 1) if nights[0].returncode == 0 else (1, 0)
    assert (f"another run holds the project lock: pid {nights[winner].pid} 'oanet nightly' since"
            in outputs[loser]), outputs[loser][-2000:]
    labels = raw_labels(project)
    assert labels["image"].is_unique and set(labels["image"]) == {f"images/{n}" for n in names}
    assert not list((project / "incoming/images").iterdir()) and not list((project / "incoming").glob("labels*"))
