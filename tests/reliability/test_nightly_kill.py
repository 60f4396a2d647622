"""`oanet nightly` killed with SIGKILL at 10 random points of a night that takes in 200 new images.

After each kill a second night must complete, and then data/raw/labels.csv holds every unit
delivered so far exactly once, each image byte for byte, and incoming/ holds nothing that
was taken. Nights are data-only (nightly.train: false) on a shared Prefect server, and the
deliveries reuse one OCR'd template, so a night takes seconds.

Where the kill lands is drawn with a fixed seed. Some kills come after a random delay within a
night's duration (the last complete night's); as intake is a small part of a night, the others
wait for a random point of intake itself, seen from outside: the k-th image landing in
data/raw/images, labels.csv being replaced, or the k-th image leaving incoming/.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from nightly_project import deliver, make_project, prefect_server, raw_labels, run_night, start_night

SEED, ROUNDS, COPIES = 14, 10, 5           # 40 template units x 5 copies = 200 new images a night
MODES = ("delay", "copying", "labels", "clearing")


def _trigger(mode: str, rng: random.Random, project: Path, names: list[str], night_s: float):
    """(what, condition): the kill point of this round, as a test on the files the night writes."""
    raw = project / "data/raw"
    if mode == "delay":
        at = time.monotonic() + rng.uniform(0, night_s)
        return f"after {at - time.monotonic():.1f} s", lambda: time.monotonic() >= at
    k = rng.randrange(len(names))
    if mode == "copying":
        return f"when image {k + 1}/{len(names)} is in raw", lambda: (raw / "images" / names[k]).exists()
    if mode == "clearing":
        return (f"when image {k + 1}/{len(names)} has left incoming",
                lambda: not (project / "incoming/images" / names[k]).exists())
    before = os.stat(raw / "labels.csv").st_ino
    return "when labels.csv is replaced", lambda: os.stat(raw / "labels.csv").st_ino != before


def _kill_night(project: Path, root: Path, log: Path, api_url: str, condition, limit_s: float = 120) -> bool:
    """Start a night and SIGKILL its process group when `condition` holds: False if it finished first."""
    night = start_night(project, root, log, api_url)
    deadline = time.monotonic() + limit_s
    while night.poll() is None and not condition() and time.monotonic() < deadline:
        time.sleep(0.0005)
    if night.poll() is not None:
        return False
    os.killpg(night.pid, signal.SIGKILL)
    night.wait()
    return True


def _check(project: Path, template: Path, delivered: dict[str, str], batches_at_least: int) -> None:
    labels = raw_labels(project)
    assert labels["image"].is_unique, labels[labels["image"].duplicated()]["image"].tolist()[:5]
    assert set(labels["image"]) == {f"images/{name}" for name in delivered}
    incoming = project / "incoming"
    assert not [p.name for p in (incoming / "images").iterdir() if not p.name.startswith(".")]
    assert not list(incoming.glob("labels*.csv"))
    raw = project / "data/raw"
    assert not list(raw.rglob(".oanet-tmp-*")) and not list(raw.parent.glob(".oanet-tmp-*"))
    for name, source in delivered.items():
        data = (raw / "images" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == source, f"{name}: not the delivered bytes"
    assert len(json.loads((raw / "source.json").read_text())["batches"]) >= batches_at_least


@pytest.mark.slow
def test_nightly_killed_at_ten_random_points_loses_and_doubles_nothing(tmp_path):
    project = make_project(tmp_path, units=200 // COPIES)
    template = tmp_path / "template"
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (template / "images").iterdir()}
    rng = random.Random(SEED)
    delivered, kills = {}, []
    started = time.monotonic()
    with prefect_server(tmp_path) as api_url:
        # a first, whole night: the raw dataset, its layout, and every template image in the OCR cache
        names = deliver(project, template, "r00", copies=1)
        delivered.update({n: digests[n.split("_", 2)[2]] for n in names})
        night_s = run_night(project, tmp_path, tmp_path / "night-00.log", api_url)
        _check(project, template, delivered, 1)
        for i in range(1, ROUNDS + 1):
            names = deliver(project, template, f"r{i:02d}", copies=COPIES)
            assert len(names) == 200
            delivered.update({n: digests[n.split("_", 2)[2]] for n in names})
            mode = MODES[(i - 1) % len(MODES)]
            what, condition = _trigger(mode, rng, project, names, night_s)
            killed = _kill_night(project, tmp_path, tmp_path / f"killed-{i:02d}.log", api_url, condition)
            kills.append(f"{i}: {mode} {what}: {'killed' if killed else 'finished first'}")
            night_s = run_night(project, tmp_path, tmp_path / f"night-{i:02d}.log", api_url)
            _check(project, template, delivered, i + 1)
    print("\n".join([*kills, f"{len(delivered)} units, {time.monotonic() - started:.0f} s"]))
    assert sum("killed" in k for k in kills) >= 8, kills     # the kills happened, mid-night
