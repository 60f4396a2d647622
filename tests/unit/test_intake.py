"""Stage `data`: the raw dataset starts as the demo set, grows by intake, and never loses an image."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from oanet.config import DataConfig, PathsConfig, SynthConfig
from oanet.intake import IntakeError, dataset_version, run

DEMO = SynthConfig(n=6, seed=1, units_per_lot=3)


def _deliver(folder, n=4, seed=2):
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=n, seed=seed, units_per_lot=2, lot_yymm="2612"), folder, progress=False)


def _labels(raw):
    return pd.read_csv(raw / "labels.csv", dtype=str, keep_default_na=False)


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "incoming").mkdir()
    return DataConfig(settle_s=0)


@pytest.fixture
def paths(tmp_path):
    return PathsConfig(raw=str(tmp_path / "raw"), incoming=str(tmp_path / "incoming"))


def test_an_empty_raw_dataset_starts_as_the_demo_set_and_is_then_left_alone(cfg, paths, tmp_path):
    first = run(cfg, DEMO, paths, progress=False)
    assert first.seeded == "demo" and first.raw_images == 6
    version = dataset_version(paths.raw)
    second = run(cfg, DEMO, paths, progress=False)
    assert not second.new_data and dataset_version(paths.raw) == version


def test_new_synth_params_regenerate_a_demo_only_dataset(cfg, paths):
    run(cfg, DEMO, paths, progress=False)
    again = run(cfg, SynthConfig(n=8, seed=1, units_per_lot=4), paths, progress=False)
    assert again.seeded == "demo" and again.raw_images == 8


def test_intake_moves_images_and_labels_and_protects_them_from_the_demo_generator(cfg, paths, tmp_path):
    run(cfg, DEMO, paths, progress=False)
    _deliver(tmp_path / "incoming")
    result = run(cfg, DEMO, paths, progress=False)
    assert (result.moved, result.raw_images) == (4, 10)
    assert not list((tmp_path / "incoming/images").iterdir())
    assert len(_labels(tmp_path / "raw")) == 10
    assert len(pd.read_csv(tmp_path / "raw/truth.csv")) == 10
    # the dataset now holds real intake: a change of the demo params must not wipe it
    after = run(cfg, SynthConfig(n=3, seed=4), paths, progress=False)
    assert not after.seeded and after.raw_images == 10


def test_a_name_clash_is_renamed_and_an_identical_image_is_a_duplicate(cfg, paths, tmp_path):
    run(cfg, DEMO, paths, progress=False)
    raw_images = sorted((tmp_path / "raw/images").iterdir())
    incoming = tmp_path / "incoming"
    (incoming / "images").mkdir()
    shutil.copy(raw_images[0], incoming / "images" / raw_images[0].name)        # same bytes: duplicate
    shutil.copy(raw_images[2], incoming / "images" / raw_images[1].name)        # same name, other bytes
    pd.DataFrame({"image": [f"images/{raw_images[0].name}", raw_images[1].name], "label": ["0", "1"]}).to_csv(
        incoming / "labels.csv", index=False)
    result = run(cfg, DEMO, paths, progress=False)
    assert (result.moved, result.renamed, result.duplicates, result.raw_images) == (1, 1, 1, 7)
    labels = _labels(tmp_path / "raw")
    renamed = labels[~labels["image"].isin([f"images/{p.name}" for p in raw_images])]
    assert len(renamed) == 1 and renamed["image"].iloc[0].startswith(f"images/{raw_images[1].stem}_")
    assert renamed["lot"].iloc[0].startswith("night-")     # no lot given: the night's batch is the lot
    assert (tmp_path / "raw" / renamed["image"].iloc[0]).is_file()


def test_a_rerun_after_a_crash_finishes_the_move_without_a_second_row(cfg, paths, tmp_path):
    run(cfg, DEMO, paths, progress=False)
    _deliver(tmp_path / "incoming")
    first = sorted((tmp_path / "incoming/images").iterdir())[0]
    shutil.copy(first, tmp_path / "raw/images" / first.name)    # the crash: copied, labels not yet written
    result = run(cfg, DEMO, paths, progress=False)
    assert result.raw_images == 10 and result.duplicates == 1
    labels = _labels(tmp_path / "raw")
    assert labels["image"].is_unique and f"images/{first.name}" in set(labels["image"])


def test_incoming_images_without_labels_wait_and_another_layout_is_refused(cfg, paths, tmp_path):
    run(cfg, DEMO, paths, progress=False)
    _deliver(tmp_path / "incoming")
    (tmp_path / "incoming/labels.csv").rename(tmp_path / "labels.bak")
    waiting = run(cfg, DEMO, paths, progress=False)         # no label row yet: they wait in incoming, reported
    assert waiting.moved == 0 and len(waiting.waiting) == 4 and "no label row yet" in waiting.summary()
    (tmp_path / "labels.bak").rename(tmp_path / "incoming/labels.csv")
    (tmp_path / "incoming/layout.yaml").write_text("name: another\n")
    with pytest.raises(IntakeError, match="differs"):
        run(cfg, DEMO, paths, progress=False)
    assert len(list((tmp_path / "incoming/images").iterdir())) == 4      # nothing moved, nothing lost


def test_no_demo_and_no_images_is_a_clear_error(tmp_path):
    cfg, paths = DataConfig(seed_demo=False), PathsConfig(raw=str(tmp_path / "raw"), incoming=str(tmp_path / "in"))
    with pytest.raises(IntakeError, match="no images"):
        run(cfg, DEMO, paths, progress=False)
