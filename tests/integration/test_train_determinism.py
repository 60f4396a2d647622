"""`oanet train` twice with one seed: the same metrics and the same gate, byte for byte.

Both runs are `oanet train` in a new process, each on its own copy of the session's OCR table
and images, as a user would run it twice. Neither the global random state nor anything cached
in a process can make them agree by accident, and nothing the test process did before (a test
that changed a library's thread count, say) can make them differ: an in-process first run did
differ at 1e-5 in the gate's coefficients after the Dask tests had run in the same process.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def train_copy(trained_dir: Path, data: Path, work: Path) -> Path:
    """`oanet train` in a fresh process on a copy of the trained set's inputs; returns the copy."""
    work.mkdir()
    shutil.copy(trained_dir / "clean.parquet", work / "clean.parquet")
    shutil.copytree(data, work / data.name)
    # the same params file, every path moved to the copy (images, table, models, reports)
    (work / "params.yaml").write_text((trained_dir / "params.yaml").read_text().replace(str(trained_dir), str(work)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "train",
                           "--params", str(work / "params.yaml")], env=env, cwd=work,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


@pytest.mark.slow
def test_train_twice_with_one_seed_gives_identical_metrics_and_gate(trained, tmp_path):
    source, data, _ = trained
    first, second = (train_copy(source, data, tmp_path / name) for name in ("first", "second"))
    # metrics.json holds test metrics only and gate.json the calibrated gate: no timings, no paths,
    # so nothing in them may legitimately differ
    for name in ("metrics.json", "models/gate.json"):
        assert (second / name).read_text() == (first / name).read_text(), name
