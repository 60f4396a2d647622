"""Finding 3: crash bookkeeping. Every batch is recorded, also one that only finishes a killed intake; the
demo generator never regenerates over delivered data, whatever source.json says; an image copy killed
half-way never shows up under its name."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import yaml

from oanet.config import DataConfig, PathsConfig, SynthConfig
from oanet.intake import run

DEMO = SynthConfig(n=3, seed=1, units_per_lot=3)
OTHER_DEMO = SynthConfig(n=3, seed=9, units_per_lot=3)
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _deliver(folder, n=2, seed=2):
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=n, seed=seed, units_per_lot=2, lot_yymm="2612"), folder, progress=False)


def _rows(raw) -> int:
    return len(pd.read_csv(raw / "labels.csv", dtype=str, keep_default_na=False))


def test_a_rerun_that_finds_every_image_copied_records_its_batch_and_keeps_the_demo_generator_away(tmp_path):
    raw, incoming = tmp_path / "raw", tmp_path / "incoming"
    cfg, paths = DataConfig(settle_s=0), PathsConfig(raw=str(raw), incoming=str(incoming))
    run(cfg, DEMO, paths, progress=False)
    before = (raw / "source.json").read_bytes()
    _deliver(incoming)
    shutil.copytree(incoming, tmp_path / "delivery")
    run(cfg, DEMO, paths, progress=False)
    assert _rows(raw) == 5
    # the state of an intake killed after labels.csv was replaced: the batch not yet recorded, incoming not cleared
    (raw / "source.json").write_bytes(before)
    shutil.rmtree(incoming)
    shutil.copytree(tmp_path / "delivery", incoming)
    rerun = run(cfg, DEMO, paths, progress=False)
    assert rerun.duplicates == 2 and _rows(raw) == 5
    assert json.loads((raw / "source.json").read_text())["batches"], "the resumed batch was not recorded"
    after = run(cfg, OTHER_DEMO, paths, progress=False)      # the trigger: new synth params
    assert not after.seeded and _rows(raw) == 5, "the demo generator wrote over delivered labels"


def test_the_demo_generator_judges_by_content_not_by_the_batch_list(tmp_path):
    raw, incoming = tmp_path / "raw", tmp_path / "incoming"
    cfg, paths = DataConfig(settle_s=0), PathsConfig(raw=str(raw), incoming=str(incoming))
    run(cfg, DEMO, paths, progress=False)
    _deliver(incoming)
    run(cfg, DEMO, paths, progress=False)
    source = json.loads((raw / "source.json").read_text())
    (raw / "source.json").write_text(json.dumps({**source, "batches": []}))    # a batch record lost
    after = run(cfg, OTHER_DEMO, paths, progress=False)
    assert not after.seeded and _rows(raw) == 5 and after.raw_images == 5
    # while the dataset is only the demo set, new synth params still regenerate it
    fresh = PathsConfig(raw=str(tmp_path / "raw2"), incoming=str(incoming))
    run(cfg, DEMO, fresh, progress=False)
    assert run(cfg, OTHER_DEMO, fresh, progress=False).seeded == "demo"


def test_an_image_copy_killed_half_way_never_appears_under_its_name(tmp_path):
    project = tmp_path / "project"
    (project / "incoming/images").mkdir(parents=True)
    (project / "params.yaml").write_text(yaml.safe_dump({"data": {"settle_s": 0, "seed_demo": False}}))
    data = os.urandom(40 << 20)              # 40 MB: the copy takes long enough to be killed in the middle
    (project / "incoming/images/big.png").write_bytes(data)
    (project / "incoming/labels.csv").write_text("image,label\nimages/big.png,1\n")
    target = project / "data/raw/images/big.png"
    command = [sys.executable, "-m", "oanet.cli", "data"]
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    intake = subprocess.Popen(command, cwd=project, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not target.exists() and intake.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0002)
    if intake.poll() is None:
        os.kill(intake.pid, signal.SIGKILL)  # the moment the name appears
    assert intake.wait() in (0, -signal.SIGKILL), intake.stderr.read().decode()[-2000:]
    if target.exists():
        assert target.stat().st_size == len(data), "half an image under its final name"
    done = subprocess.run(command, cwd=project, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in target.parent.iterdir()] == ["big.png"] and target.read_bytes() == data
    assert not (project / "incoming/images/big.png").exists() and _rows(project / "data/raw") == 1
