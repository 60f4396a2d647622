"""`oanet train` twice with one seed: the same metrics and the same gate, byte for byte.

The first run is the session's `trained` fixture (in-process); the second runs `oanet train`
in a new process on a copy of the same OCR table and images, so neither the global random
state nor anything cached in the process can make the two agree by accident.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_train_twice_with_one_seed_gives_identical_metrics_and_gate(trained, tmp_path):
    first, data, _ = trained
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(first / "clean.parquet", second / "clean.parquet")
    shutil.copytree(data, second / data.name)
    # the same params file, every path moved to the copy (images, table, models, reports)
    (second / "params.yaml").write_text((first / "params.yaml").read_text().replace(str(first), str(second)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "train",
                           "--params", str(second / "params.yaml")], env=env, cwd=second,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # metrics.json holds test metrics only and gate.json the calibrated gate: no timings, no paths,
    # so nothing in them may legitimately differ
    for name in ("metrics.json", "models/gate.json"):
        assert (second / name).read_text() == (first / name).read_text(), name
