"""Bad input (issue 2, section 5): every broken case ends in the quarantine or a clear error.

One folder holds a few good images plus one of each broken case; the run must not
crash, must account for every labels.csv row and every image file exactly once, and
must print counts that match its two tables.
"""
from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from oanet.config import IngestConfig
from oanet.ingest.inventory import DataError, image_files
from oanet.ingest.stage import run
from oanet.layout import LayoutError

GOOD = 4
# image name in the folder (or in labels.csv only) -> the reason it must be quarantined with
EXPECTED = {
    "images/truncated.png": "truncated",
    "images/bad_header.png": "truncated",          # a PNG whose header checksum was flipped: damaged, not "no image"
    "images/empty.png": "empty_file",
    "images/text.png": "not_an_image",
    "images/small.png": "wrong_size",
    "images/blank_panel.png": "blank_panel",
    "images/copy_of_first.png": "duplicate_unit",
    "images/gone.png": "missing_image",
    "images/stray.png": "unlabelled",
}


@pytest.fixture(scope="module")
def bad_folder(synth_set, tmp_path_factory):
    data = tmp_path_factory.mktemp("bad") / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    labels = pd.read_csv(synth_set / "labels.csv").iloc[:GOOD + 1]
    good, spare = labels.iloc[:GOOD], labels.iloc[GOOD]
    for name in good["image"]:
        shutil.copy(synth_set / name, data / name)
    first = (synth_set / good["image"].iloc[0]).read_bytes()
    images = data / "images"
    (images / "truncated.png").write_bytes(first[: len(first) // 2])
    (images / "bad_header.png").write_bytes(first[:29] + bytes([first[29] ^ 0xFF]) + first[30:])  # IHDR's CRC
    (images / "empty.png").write_bytes(b"")
    (images / "text.png").write_text("this is not an image\n")
    Image.open(synth_set / good["image"].iloc[1]).resize((320, 240)).save(images / "small.png")
    # An object, but nothing printed around it: the whole panel is flat background.
    arr = np.asarray(Image.open(synth_set / good["image"].iloc[2]).convert("L")).copy()
    panel = np.ones(arr.shape, dtype=bool)
    panel[160:480, 0:320] = False
    arr[panel] = 24
    Image.fromarray(arr).save(images / "blank_panel.png")
    (images / "copy_of_first.png").write_bytes(first)            # same unit id under another name
    shutil.copy(synth_set / spare["image"], images / "stray.png")  # a good image nobody labelled
    rows = [good] + [pd.DataFrame([{**good.iloc[0].to_dict(), "image": name}])
                     for name, reason in EXPECTED.items() if reason != "unlabelled"]
    pd.concat(rows, ignore_index=True).to_csv(data / "labels.csv", index=False)
    return data


@pytest.fixture(scope="module")
def bad_run(bad_folder, tmp_path_factory):
    """The CLI on the bad folder: what a user sees, and the two tables it writes."""
    from oanet.cli import app

    out = tmp_path_factory.mktemp("bad_out") / "ocr.parquet"
    (out.parent / "defaults.yaml").write_text("")
    res = CliRunner().invoke(app, ["ingest", "--data", str(bad_folder), "--out", str(out), "--no-cache",
                                   "--params", str(out.parent / "defaults.yaml")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output, pd.read_parquet(out), pd.read_parquet(out.with_name("ocr_quarantine.parquet"))


def copy_of(folder: Path, tmp_path: Path) -> Path:
    """A private copy of the bad-input folder that one test may break further."""
    data = tmp_path / "aoi"
    shutil.copytree(folder, data)
    return data


def test_folder_holds_every_case(bad_folder):
    files = set(image_files(bad_folder))
    labelled = set(pd.read_csv(bad_folder / "labels.csv")["image"])
    for name, reason in EXPECTED.items():
        assert (name in files) == (reason != "missing_image"), name
        assert (name in labelled) == (reason != "unlabelled"), name
    assert (bad_folder / "images" / "empty.png").stat().st_size == 0


def test_every_input_ends_in_exactly_one_table(bad_folder, bad_run):
    _, table, quarantine = bad_run
    inputs = set(image_files(bad_folder)) | set(pd.read_csv(bad_folder / "labels.csv")["image"])
    seen = Counter(list(table["image"]) + list(quarantine["image"]))
    assert set(seen) == inputs
    assert [name for name, count in seen.items() if count != 1] == []


def test_each_case_has_its_reason(bad_run):
    _, table, quarantine = bad_run
    reasons = dict(zip(quarantine["image"], quarantine["reason"], strict=True))
    assert reasons == EXPECTED
    assert quarantine["detail"].notna().all() and (quarantine["detail"].str.len() > 0).all()
    details = dict(zip(quarantine["image"], quarantine["detail"], strict=True))
    assert details["images/bad_header.png"] == "cannot decode: a PNG file whose header is damaged"


def test_good_images_are_read(bad_folder, bad_run, truth):
    _, table, _ = bad_run
    good = pd.read_csv(bad_folder / "labels.csv")["image"].iloc[:GOOD]
    assert sorted(table["image"]) == sorted(good)
    # The first of the two identical files keeps its row; the copy is the duplicate.
    expected = truth.set_index("image").loc[table["image"], "unit_id"].tolist()
    assert table["unit_id"].tolist() == expected


def test_printed_counts_match_the_tables(bad_run):
    output, table, quarantine = bad_run
    total = len(table) + len(quarantine)
    m = re.search(r"(\d+) images in -> (\d+) rows, (\d+) quarantined \((.*)\)", output)
    assert m, output
    assert (int(m[1]), int(m[2]), int(m[3])) == (total, len(table), len(quarantine))
    printed = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", m[4]))
    assert printed == dict(Counter(quarantine["reason"]))
    # Images that were decoded are OCR'd (no cache); the rest never reach the recogniser.
    ocr = re.search(r"OCR on (\d+) images, (\d+) from cache", output)
    assert ocr and (int(ocr[1]), int(ocr[2])) == (GOOD + 1, 0)


def test_missing_labels_csv_is_a_clear_error(bad_folder, tmp_path):
    data = copy_of(bad_folder, tmp_path)
    (data / "labels.csv").unlink()
    with pytest.raises(DataError, match=r"labels\.csv not found.*image,label"):
        run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_labels_csv_without_label_column(bad_folder, tmp_path):
    data = copy_of(bad_folder, tmp_path)
    pd.read_csv(data / "labels.csv")[["image"]].to_csv(data / "labels.csv", index=False)
    with pytest.raises(DataError, match=r"lacks the columns \['label'\]"):
        run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet")


def test_missing_layout_is_a_clear_error(bad_folder, tmp_path):
    data = copy_of(bad_folder, tmp_path)
    (data / "layout.yaml").unlink()
    with pytest.raises(LayoutError, match=r"layout file not found: .*layout\.yaml"):
        run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet")
    with pytest.raises(LayoutError, match="not found"):
        run(IngestConfig(cache=None), bad_folder, tmp_path / "t.parquet", tmp_path / "q.parquet",
            layout_path=tmp_path / "other.yaml")


@pytest.mark.parametrize("text", ["", "image,label\n\"unclosed,0\n"])
def test_unreadable_labels_csv_is_a_clear_error(bad_folder, tmp_path, text):
    data = copy_of(bad_folder, tmp_path)
    (data / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=r"labels\.csv is not a readable CSV"):
        run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet")


def test_cli_reports_a_data_error(bad_folder, tmp_path, default_params):
    from oanet.cli import app

    data = copy_of(bad_folder, tmp_path)
    (data / "labels.csv").unlink()
    res = CliRunner().invoke(app, ["ingest", "--data", str(data), "--out", str(tmp_path / "t.parquet"),
                                   "--no-cache", "--params", str(default_params)])
    assert res.exit_code != 0
    assert isinstance(res.exception, DataError) and "labels.csv" in str(res.exception)


def test_a_folder_with_nothing_usable_still_writes_both_tables(synth_set, tmp_path):
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    (data / "images" / "a.png").write_bytes(b"")
    pd.DataFrame({"image": ["images/a.png", "images/b.png"], "label": [0, 1]}).to_csv(
        data / "labels.csv", index=False)
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet")
    assert (result.rows, result.quarantined, result.ocr_images) == (0, 2, 0)
    assert result.by_reason == {"empty_file": 1, "missing_image": 1}
    table = pd.read_parquet(result.out)
    assert len(table) == 0 and "sinter_temp_c__reason" in table.columns
    assert sorted(pd.read_parquet(result.quarantine)["image"]) == ["images/a.png", "images/b.png"]
    with pytest.raises(DataError, match=r"ingest kept no rows: all 2 images quarantined \(empty_file 1, missing"):
        result.require_rows()                 # the pipeline's ingest stops here; the tables stay for the reasons


def _relabelled(synth_set, tmp_path, change) -> Path:
    """Two good images whose labels.csv `change` rewrites (no OCR runs: both end in the quarantine)."""
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    labels = pd.read_csv(synth_set / "labels.csv").iloc[:2]
    for name in labels["image"]:
        shutil.copy(synth_set / name, data / name)
    change(labels).to_csv(data / "labels.csv", index=False)
    return data


@pytest.mark.parametrize("change, hint", [
    (lambda t: t.assign(label=["OK", "NG"]),
     r"2 labels.csv rows are labelled other than 0 or 1 \('OK' 1, 'NG' 1\): write 1 for a defective unit"),
    (lambda t: t.assign(image=t["image"].str.replace(".png", ".JPG")),
     r"2 labels.csv names match a file but for extension, case or folder \(e.g. 'images/\w+.JPG' and the file "
     r"'images/\w+.png'\)"),
    (lambda t: t.assign(image=t["image"].str.replace("images/", "")),
     r"2 labels.csv names match a file but for extension, case or folder"),
])
def test_an_ingest_that_keeps_nothing_fails_saying_what_was_most_likely_wrong(synth_set, tmp_path, default_params,
                                                                              change, hint):
    from oanet.cli import app

    data = _relabelled(synth_set, tmp_path, change)
    res = CliRunner().invoke(app, ["ingest", "--data", str(data), "--out", str(tmp_path / "t.parquet"),
                                   "--no-cache", "--params", str(default_params)])
    assert res.exit_code != 0 and isinstance(res.exception, DataError), res.output
    assert re.search(hint, str(res.exception)), str(res.exception)
    assert len(pd.read_parquet(tmp_path / "t_quarantine.parquet")) >= 2       # every input still accounted for


def test_hints_name_a_pattern_only_where_there_is_one():
    from oanet.ingest.inventory import Rejected, quarantine_hints

    labels = pd.DataFrame({"image": ["images/a.png", "images/b.png"], "label": ["1", " 0 "]})
    twins = [Rejected("images/a.png", "missing_image"), Rejected("x/a.jpg", "unlabelled"),
             Rejected("y/a.bmp", "unlabelled")]                # two files could be `a`: neither is named
    assert quarantine_hints(labels, twins, 4) == []
    small = [Rejected("images/a.png", "wrong_size", "320x240, layout aoi-v1 needs 640x480"),
             Rejected("images/b.png", "wrong_size", "320x240, layout aoi-v1 needs 640x480")]
    assert quarantine_hints(labels, small, 2) == [
        "every image was quarantined as wrong_size, e.g. images/a.png: 320x240, layout aoi-v1 needs 640x480"]
    assert quarantine_hints(labels, small, 3) == [
        "2 images are of another size than the layout's (2 at 320x240): a layout holds one image size, so a machine "
        "that saved at two needs a layout per size; ingest those images as a folder of their own, with a "
        "layout.yaml drafted from them (oanet layout suggest)"]
    assert quarantine_hints(labels, [Rejected("images/a.png", "wrong_size", "Image size (2000000000 pixels) exceeds "
                                              "limit; layout aoi-v1 needs 640x480")], 3) == []   # no size to name


def test_labelled_twice_keeps_one_row(synth_set, ocr, tmp_path):
    """A repeated labels.csv row with the same label is read once; conflicting labels
    quarantine the image once (conflicting_labels) and keep it out of the table."""
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    first = pd.read_csv(synth_set / "labels.csv").iloc[[0]]
    shutil.copy(synth_set / first["image"].iloc[0], data / first["image"].iloc[0])
    pd.concat([first, first]).to_csv(data / "labels.csv", index=False)
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (result.rows, result.by_reason) == (1, {})
    table = pd.read_parquet(result.out)
    assert table["label"].tolist() == first["label"].tolist()
    pd.concat([first, first.assign(label=1 - first["label"])]).to_csv(data / "labels.csv", index=False)
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    assert (result.rows, result.by_reason) == (0, {"conflicting_labels": 1})


# --- files the system will not give us, or that must not be opened ----------------------

@pytest.fixture
def awkward_folder(synth_set, tmp_path):
    """One good image and labels for it, plus files that ingest must account for without reading them."""
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    labels = pd.read_csv(synth_set / "labels.csv").iloc[:2]
    shutil.copy(synth_set / labels["image"].iloc[0], data / labels["image"].iloc[0])
    outside = tmp_path / "elsewhere.png"
    shutil.copy(synth_set / labels["image"].iloc[1], outside)
    (data / "images" / "outside.png").symlink_to(outside)                  # a link leaving the folder: followed
    (data / "images" / "dangling.png").symlink_to(tmp_path / "gone.png")   # a link to nothing
    with open(os.path.join(os.fsencode(data / "images"), b"bad\xffname.png"), "wb") as f:
        f.write(outside.read_bytes())                                        # a name that is not UTF-8
    rows = [labels.iloc[[0]], labels.iloc[[1]].assign(image="images/outside.png")]
    pd.concat(rows).to_csv(data / "labels.csv", index=False)
    return data, labels["image"].iloc[0]


def _accounted(result) -> Counter:
    return Counter(list(pd.read_parquet(result.out)["image"]) + list(pd.read_parquet(result.quarantine)["image"]))


def test_links_to_nothing_and_undecodable_names_are_quarantined_unread(awkward_folder, ocr, tmp_path):
    data, good = awkward_folder
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    reasons = dict(pd.read_parquet(result.quarantine)[["image", "reason"]].itertuples(index=False))
    assert reasons == {"images/dangling.png": "unreadable", "images/bad\ufffdname.png": "bad_encoding"}
    assert sorted(pd.read_parquet(result.out)["image"]) == sorted([good, "images/outside.png"])
    assert set(_accounted(result).values()) == {1} and result.ocr_images == 2


def test_a_file_that_cannot_be_read_or_is_too_large_is_quarantined_and_the_rest_go_on(awkward_folder, ocr,
                                                                                      tmp_path, monkeypatch):
    data, good = awkward_folder
    pd.DataFrame({"image": [good, "images/locked.png"], "label": [0, 1]}).to_csv(data / "labels.csv", index=False)
    shutil.copy(data / good, data / "images" / "locked.png")
    real = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    q = pd.read_parquet(result.quarantine).set_index("image")
    assert q.loc["images/locked.png", "reason"] == "unreadable" and "Permission denied" in q.loc["images/locked.png",
                                                                                                 "detail"]
    assert list(pd.read_parquet(result.out)["image"]) == [good]
    big = run(IngestConfig(cache=None, max_image_mb=0.01), data, tmp_path / "t2.parquet", tmp_path / "q2.parquet",
              ocr=ocr)
    assert big.rows == 0 and big.ocr_images == 0 and big.by_reason["too_large"] == 2
    assert set(_accounted(big).values()) == {1}


def test_a_folder_that_cannot_be_listed_is_named_in_the_quarantine(awkward_folder, tmp_path, monkeypatch):
    from oanet.ingest.inventory import scan

    data, _ = awkward_folder
    (data / "images" / "shut").mkdir()
    real = os.scandir

    def scandir(path):
        if os.fsdecode(path).endswith("shut"):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _, found = scan(data)
    shut = [r for r in found if r.image == "images/shut"]
    assert len(shut) == 1 and shut[0].reason == "unreadable" and "cannot be listed" in shut[0].detail


def test_a_16_bit_image_is_read_not_called_blank(synth_set, ocr, truth, tmp_path):
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    row = pd.read_csv(synth_set / "labels.csv").iloc[[0]]
    gray = np.asarray(Image.open(synth_set / row["image"].iloc[0]).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray).save(data / row["image"].iloc[0])
    assert Image.open(data / row["image"].iloc[0]).mode.startswith("I")
    row.to_csv(data / "labels.csv", index=False)
    result = run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet", ocr=ocr)
    table = pd.read_parquet(result.out)
    assert result.rows == 1, pd.read_parquet(result.quarantine).to_dict("records")
    assert table["unit_id"].iloc[0] == truth.set_index("image").loc[row["image"].iloc[0], "unit_id"]


@pytest.mark.parametrize("out, quarantine, words", [
    ("t.parquet", "t.parquet", "both be written to"),
    ("t.csv", "q.parquet", "name the file .parquet"),
    ("folder.parquet", "q.parquet", "is a folder"),
])
def test_outputs_that_cannot_be_written_are_refused_before_any_ocr(bad_folder, tmp_path, out, quarantine, words):
    (tmp_path / "folder.parquet").mkdir()
    with pytest.raises(DataError, match=words):
        run(IngestConfig(cache=None), bad_folder, tmp_path / out, tmp_path / quarantine, ocr=object())


def test_a_labels_csv_column_named_like_one_ingest_writes_is_kept_renamed(awkward_folder, ocr, tmp_path):
    data, good = awkward_folder
    pd.DataFrame({"image": [good], "label": [0], "sha256": ["from the line"], "gain_db__text": ["x"]}).to_csv(
        data / "labels.csv", index=False)
    table = pd.read_parquet(run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet",
                                ocr=ocr).out)
    assert table["sha256"].str.fullmatch(r"[0-9a-f]{64}").all() and table["gain_db__text"].iloc[0] != "x"
    assert (table["sha256__labels"].iloc[0], table["gain_db__text__labels"].iloc[0]) == ("from the line", "x")


def test_the_summary_says_why_each_field_went_missing():
    from oanet.ingest.stage import IngestResult

    result = IngestResult(rows=40, quarantined=0, by_reason={}, ocr_images=40, cached_images=0, seconds=1.0,
                          out=Path("t.parquet"), quarantine=Path("q.parquet"),
                          field_missing={"oven": 21, "operator": 13, "lot": 0},
                          missing_reasons={"oven": {"unparsed": 21}, "operator": {"unconfirmed": 6, "low_confidence": 7},
                                           "lot": {}})
    assert "missing values by field: oven 21 (unparsed 21), operator 13 (low_confidence 7, unconfirmed 6)\n" \
        in result.summary()


def test_a_labelled_name_that_is_there_but_no_image_type_says_what_it_is(awkward_folder, ocr, tmp_path):
    data, good = awkward_folder
    (data / "images" / "anim.gif").write_bytes(b"GIF89a")
    (data / "images" / "sub.png").mkdir()
    pd.DataFrame({"image": ["images/anim.gif", "images/sub.png", "images/gone.png"], "label": [0, 1, 0]}).to_csv(
        data / "labels.csv", index=False)
    (data / good).unlink()
    q = pd.read_parquet(run(IngestConfig(cache=None), data, tmp_path / "t.parquet", tmp_path / "q.parquet",
                            ocr=ocr).quarantine).set_index("image")["detail"]
    assert q["images/anim.gif"] == "line 2 names it: it is a .gif file; ingest reads bmp, jpeg, jpg, png, tif, tiff files"
    assert q["images/sub.png"].startswith("line 3 names it: it is a folder")
    assert q["images/gone.png"] == "line 4 names it, the folder lacks it"
