"""Finding 2: files still arriving. An image is taken only once it has settled and a label row names it;
only the rows of the images taken leave incoming, and rows written meanwhile survive."""
from __future__ import annotations

import time

import pandas as pd

from oanet.config import DataConfig, PathsConfig, SynthConfig
from oanet.intake import run

DEMO = SynthConfig(n=4, seed=1, units_per_lot=2)


def _deliver(folder, n=4, seed=2):
    from oanet.synth.stage import run as synth

    synth(SynthConfig(n=n, seed=seed, units_per_lot=2, lot_yymm="2612"), folder, progress=False)
    return sorted(p.name for p in (folder / "images").iterdir())


def _labels(raw):
    return pd.read_csv(raw / "labels.csv", dtype=str, keep_default_na=False)


def _cfg(settle_s=0.0):
    return DataConfig(settle_s=settle_s, seed_demo=False)


def _paths(tmp_path):
    return PathsConfig(raw=str(tmp_path / "raw"), incoming=str(tmp_path / "incoming"))


def test_an_image_still_being_written_is_left_in_incoming_until_it_has_settled(tmp_path):
    incoming = tmp_path / "incoming"
    names = _deliver(incoming)
    cfg = _cfg(settle_s=1.0)
    time.sleep(1.2)                                       # the delivery has settled ...
    half = incoming / "images" / names[0]
    whole = half.read_bytes()
    half.write_bytes(whole[:100])                         # ... but for this image, still being written
    result = run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert result.moved == 3 and half.is_file(), "a file still being written was taken (and its original deleted)"
    assert f"{names[0]} (still arriving)" in result.waiting
    assert f"images/{names[0]}" not in set(_labels(tmp_path / "raw")["image"])
    labels = pd.read_csv(incoming / "labels.csv", dtype=str, keep_default_na=False)
    assert list(labels["image"]) == [f"images/{names[0]}"]           # its row waits with it, the others left
    half.write_bytes(whole)
    time.sleep(1.2)
    assert run(cfg, DEMO, _paths(tmp_path), progress=False).moved == 1
    assert (tmp_path / "raw/images" / names[0]).read_bytes() == whole


def test_images_without_a_label_row_wait_and_rows_added_later_are_not_lost(tmp_path):
    incoming = tmp_path / "incoming"
    names = _deliver(incoming)
    labels = pd.read_csv(incoming / "labels.csv", dtype=str, keep_default_na=False)
    labels.iloc[:2].to_csv(incoming / "labels.csv", index=False)       # rows of 2 of the 4 images so far
    first = run(_cfg(), DEMO, _paths(tmp_path), progress=False)
    assert first.moved == 2 and {f"{n} (no label row yet)" for n in names[2:]} <= set(first.waiting)
    assert sorted(p.name for p in (incoming / "images").iterdir()) == names[2:]
    labels.iloc[2:].to_csv(incoming / "labels-late.csv", index=False)  # the other rows arrive in their own file
    second = run(_cfg(), DEMO, _paths(tmp_path), progress=False)
    assert second.moved == 2 and not list((incoming / "images").iterdir())
    assert sorted(_labels(tmp_path / "raw")["image"]) == [f"images/{n}" for n in names]
    assert not list(incoming.glob("labels*.csv"))


def test_rows_appended_to_the_labels_file_during_the_intake_survive(tmp_path, monkeypatch):
    import oanet.intake as intake

    incoming = tmp_path / "incoming"
    names = _deliver(incoming)
    late = "images/U999999.png,1,Crack,\n"
    append_rows = intake._append_rows

    def append_then_a_producer_appends(csv_path, *args, **kwargs):
        append_rows(csv_path, *args, **kwargs)
        if csv_path.name == "labels.csv" and csv_path.parent.name == "raw":
            with open(incoming / "labels.csv", "a") as f:    # the line writes a row for its next image
                f.write(late)

    monkeypatch.setattr(intake, "_append_rows", append_then_a_producer_appends)
    result = run(_cfg(), DEMO, _paths(tmp_path), progress=False)
    assert result.moved == len(names)
    assert (incoming / "labels.csv").is_file(), "the labels file, with a row written during intake, was deleted"
    left = pd.read_csv(incoming / "labels.csv", dtype=str, keep_default_na=False)
    assert list(left["image"]) == ["images/U999999.png"], "a label row written during intake was lost"
