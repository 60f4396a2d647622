"""`oanet ingest` end to end on a small generated set: exact values, cache, CLI, detector path."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from oanet.config import IngestConfig
from oanet.ingest.parse import REASONS
from oanet.ingest.stage import run
from oanet.synth.aoi_layout import aoi_v1_layout

LAYOUT = aoi_v1_layout()


def printed(field, value) -> str | None:
    """A parsed value as the machine printed it, for comparison with truth.csv."""
    if pd.isna(value):
        return None
    return field.format_value(value) if field.dtype in ("float", "int") else str(value)


def mismatches(table: pd.DataFrame, truth: pd.DataFrame, fields=LAYOUT.fields) -> list[tuple]:
    truth = truth.set_index("image")
    return [(row["image"], f.name, row[f"{f.name}__text"], row[f"{f.name}__reason"], truth.loc[row["image"], f.name])
            for _, row in table.iterrows() for f in fields
            if printed(f, row[f.name]) != truth.loc[row["image"], f.name]]


# --- the fast path (line boxes) ----------------------------------------------------------

def test_every_value_equals_truth(ingest_run, truth):
    table = ingest_run.table
    assert sorted(table["image"]) == sorted(truth["image"])
    assert mismatches(table, truth) == []
    for f in LAYOUT.fields:
        assert table[f"{f.name}__reason"].isna().all(), f.name


def test_table_columns_and_types(ingest_run, synth_set):
    table = ingest_run.table
    labels = pd.read_csv(synth_set / "labels.csv")
    assert list(table.columns[:2]) == ["image", "label"]
    assert {"defect_type", "sha256"} <= set(table.columns)
    assert table.columns.is_unique            # labels.csv's `lot` stands beside the OCR'd field `lot`, renamed
    given = labels.set_index("image")["lot"].astype(str)
    assert (table["lot__labels"].astype(str) == given.loc[table["image"]].to_numpy()).all()
    assert table["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert table["sha256"].is_unique
    for f in LAYOUT.fields:
        for suffix in ("", "__text", "__conf", "__reason"):
            assert f"{f.name}{suffix}" in table.columns, f"{f.name}{suffix}"
        conf = table[f"{f.name}__conf"]
        assert pd.api.types.is_float_dtype(conf) and conf.between(0, 1).all(), f.name
        assert table[f"{f.name}__text"].notna().all()
        if f.dtype in ("float", "int"):
            assert pd.api.types.is_float_dtype(table[f.name]), f.name
        else:
            assert pd.api.types.is_string_dtype(table[f.name]), f.name
    merged = table[["image", "label"]].merge(labels[["image", "label"]], on="image", suffixes=("", "_csv"))
    assert len(merged) == len(table) and (merged["label"] == merged["label_csv"]).all()


def test_result_counts(ingest_run, truth):
    result = ingest_run.result
    n = len(truth)
    assert (result.rows, result.quarantined, result.by_reason) == (n, 0, {})
    assert (result.ocr_images, result.cached_images) == (n, 0)
    assert result.field_missing == {f.name: 0 for f in LAYOUT.fields}
    assert len(ingest_run.quarantine) == 0
    assert list(ingest_run.quarantine.columns) == ["image", "reason", "detail"]
    summary = result.summary()
    assert f"{n} images in -> {n} rows, 0 quarantined" in summary
    assert f"OCR on {n} images, 0 from cache" in summary


def test_second_run_is_served_from_cache(ingest_run, ocr, tmp_path):
    n = ingest_run.result.rows
    again = run(ingest_run.cfg, ingest_run.data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (again.cached_images, again.ocr_images, again.rows) == (n, 0, n)
    pd.testing.assert_frame_equal(pd.read_parquet(again.out), ingest_run.table)


def test_engines_side_by_side_read_as_one_engine(ingest_run, ocr, ocr_cache_root, tmp_path, monkeypatch):
    """Two one-thread engines on interleaved chunks give the table one engine gives, row for row."""
    from oanet.ingest import stage
    from oanet.ingest.engine import Ocr

    monkeypatch.setattr(stage, "CHUNK_IMAGES", 5)                  # 12 images: three chunks over two engines
    engines = [Ocr(cache_root=ocr_cache_root, threads=1, charset=ocr.charset) for _ in range(2)]
    cfg = dataclasses.replace(ingest_run.cfg, cache=None)
    single = run(cfg, ingest_run.data, tmp_path / "one.parquet", tmp_path / "one_q.parquet", ocr=ocr)
    double = run(cfg, ingest_run.data, tmp_path / "two.parquet", tmp_path / "two_q.parquet", ocr=engines)
    assert double.ocr_images == single.ocr_images == ingest_run.result.rows
    assert all(e._cnocr is not None for e in engines)                  # both engines did work
    pd.testing.assert_frame_equal(pd.read_parquet(double.out), pd.read_parquet(single.out), check_exact=True)


def test_engines_that_read_differently_are_refused(ingest_run, ocr, tmp_path):
    from oanet.ingest.engine import Ocr

    with pytest.raises(ValueError, match="engines of one ingest must read alike"):
        run(ingest_run.cfg, ingest_run.data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=[ocr, Ocr()])


def test_threshold_change_reuses_cached_reads(ingest_run, ocr, tmp_path):
    """Raw reads are cached, not parsed values: a stricter threshold needs no new OCR."""
    strict = dataclasses.replace(ingest_run.cfg, min_confidence=1.01)
    result = run(strict, ingest_run.data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (result.cached_images, result.ocr_images) == (result.rows, 0)
    table = pd.read_parquet(result.out)
    for f in LAYOUT.fields:
        assert table[f.name].isna().all() and (table[f"{f.name}__reason"] == "low_confidence").all(), f.name
        assert table[f"{f.name}__text"].equals(ingest_run.table[f"{f.name}__text"])
    assert result.field_missing == {f.name: result.rows for f in LAYOUT.fields}


def test_new_images_only_are_ocred(ingest_run, ocr, tmp_path):
    """A nightly run over old plus new images OCRs only the new ones."""
    data = tmp_path / "data"
    shutil.copytree(ingest_run.data, data)
    labels = pd.read_csv(data / "labels.csv")
    # A "new" image: one old image with one pixel changed in the object box.
    from PIL import Image

    src = data / labels.loc[0, "image"]
    img = Image.open(src)
    img.load()
    img.putpixel((5, 300), (img.getpixel((5, 300)) + 1) % 256)
    img.save(data / "images" / "new.png")
    new = labels.iloc[[0]].assign(image="images/new.png")
    pd.concat([labels, new]).to_csv(data / "labels.csv", index=False)
    result = run(ingest_run.cfg, data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (result.ocr_images, result.cached_images) == (1, len(labels))
    # The new image repeats a unit id: it is read, then quarantined as a duplicate unit.
    assert result.by_reason == {"duplicate_unit": 1}


def test_a_crop_reads_the_same_alone_and_among_others(ingest_run, ocr):
    """No gray padding to a batch-mate's width: the read is a function of the crop alone."""
    import numpy as np
    from PIL import Image

    from oanet.ingest.reading import boxed_crops

    images = [np.asarray(Image.open(ingest_run.data / n)) for n in ingest_run.table["image"][:3]]
    crops = [c for img in images for c in boxed_crops(img, LAYOUT, ingest_run.cfg.crop_pad) if c is not None]
    together = ocr.recognize(crops, batch_size=8)
    alone = [ocr.recognize([c])[0] for c in crops]
    assert len({c.shape[1] for c in crops}) > 5                     # mixed widths, several batches
    assert [(r.text, r.score) for r in alone] == [(r.text, r.score) for r in together]


def test_partly_cached_run_reads_as_a_fresh_run(ingest_run, ocr, tmp_path, monkeypatch):
    """A nightly run OCRs its new images in chunks of their own; the table is the fresh run's, scores included."""
    from oanet.ingest import stage

    monkeypatch.setattr(stage, "CHUNK_IMAGES", 4)
    half = tmp_path / "half"
    shutil.copytree(ingest_run.data, half)
    labels = pd.read_csv(half / "labels.csv")
    labels.iloc[::2].to_csv(half / "labels.csv", index=False)
    for name in labels["image"].iloc[1::2]:
        (half / name).unlink()
    cfg = dataclasses.replace(ingest_run.cfg, cache=str(tmp_path / "cache.sqlite"))
    run(cfg, half, tmp_path / "h.parquet", tmp_path / "hq.parquet", ocr=ocr)       # every other image cached
    result = run(cfg, ingest_run.data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (result.ocr_images, result.cached_images) == (len(labels) // 2, len(labels) - len(labels) // 2)
    pd.testing.assert_frame_equal(pd.read_parquet(result.out), ingest_run.table, check_exact=True)


# --- the command line --------------------------------------------------------------------

def test_cli_ingest(ingest_run, tmp_path):
    from oanet.cli import app

    params = tmp_path / "params.yaml"
    params.write_text(f"ingest:\n  cache: {json.dumps(ingest_run.cfg.cache)}\n")
    out = tmp_path / "cli" / "ocr.parquet"
    res = CliRunner().invoke(app, ["ingest", "--data", str(ingest_run.data), "--out", str(out),
                                   "--params", str(params)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    n = ingest_run.result.rows
    assert re.search(rf"\b{n} images in -> {n} rows, 0 quarantined \(none\)", res.output), res.output
    assert f"OCR on 0 images, {n} from cache" in res.output
    assert str(out) in res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), ingest_run.table)
    quarantine = out.with_name("ocr_quarantine.parquet")
    assert quarantine.exists() and len(pd.read_parquet(quarantine)) == 0


def test_cli_ingest_help_is_fast_and_offline():
    from oanet.cli import app

    res = CliRunner().invoke(app, ["ingest", "--help"])
    assert res.exit_code == 0
    assert "--data" in res.output and "--out" in res.output and "--layout" in res.output


# --- the general path: no line boxes, text detection and key matching ---------------------

@pytest.fixture(scope="module")
def detector_run(synth_set, truth, ocr, tmp_path_factory):
    data = tmp_path_factory.mktemp("nobox")
    (data / "images").mkdir()
    labels = pd.read_csv(synth_set / "labels.csv").iloc[:2]
    labels.to_csv(data / "labels.csv", index=False)
    for name in labels["image"]:
        shutil.copy(synth_set / name, data / name)
    layout_path = data / "keys_only.yaml"
    aoi_v1_layout(with_boxes=False).save(layout_path)
    result = run(IngestConfig(cache=None), data, data / "t.parquet", data / "q.parquet",
                 layout_path=layout_path, ocr=ocr)
    return result, pd.read_parquet(result.out)


def test_layout_without_boxes_still_gets_a_table(detector_run, truth):
    result, table = detector_run
    assert (result.rows, result.quarantined, result.ocr_images) == (2, 0, 2)
    for f in LAYOUT.fields:
        for suffix in ("", "__text", "__conf", "__reason"):
            assert f"{f.name}{suffix}" in table.columns
    wrong = mismatches(table, truth)
    cells = len(table) * len(LAYOUT.fields)
    assert len(wrong) <= cells // 10, wrong                   # at least 90% of the fields exact
    # A miss is missing with a reason, never a silently wrong number.
    for image, name, _, reason, _ in wrong:
        assert reason in REASONS, (image, name, reason)
    # A detected line is read through its value crop, like a boxed field: the key is cut off.
    assert not table["sinter_temp_c__text"].str.contains("TEMP").any()
