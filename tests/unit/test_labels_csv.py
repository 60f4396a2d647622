"""labels.csv that cannot poison a batch: each row is judged on its own.

Each case is a tiny folder (a few 8x8 PNG files and a labels.csv written byte for byte).
`outcome` maps every input (a file in the folder or a name in labels.csv) to where it
ended: "table" or its quarantine reason, and fails if any input ends in two places.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from oanet.ingest.inventory import (
    BAD_ENCODING,
    BAD_LABEL,
    BAD_ROW,
    CONFLICTING_LABELS,
    MISSING_IMAGE,
    OUTSIDE_FOLDER,
    QUARANTINE_REASONS,
    UNLABELLED,
    DataError,
    image_files,
    read_labels,
    reconcile,
)

HEADER = b"image,label,defect_type,lot\n"


def make_folder(tmp_path: Path, labels_csv: bytes, images=("a", "b", "c")) -> Path:
    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    for name in images:
        Image.new("L", (8, 8), color=128).save(data / "images" / f"{name}.png")
    (data / "labels.csv").write_bytes(labels_csv)
    return data


def ingest(data: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table, and every input -> "table" or its reason; each input exactly once."""
    table, rejected = reconcile(read_labels(data), image_files(data))
    names = list(table["image"]) + [r.image for r in rejected]
    assert [n for n, k in Counter(names).items() if k > 1] == [], "an input ended in two places"
    assert set(image_files(data)) <= set(names), "a file was dropped silently"
    assert all(r.reason in QUARANTINE_REASONS and r.detail for r in rejected)
    # the stage writes the quarantine to parquet: every name and detail must be valid UTF-8
    assert all((r.image + r.detail).encode("utf-8") for r in rejected)
    return table, {**{n: "table" for n in table["image"]}, **{r.image: r.reason for r in rejected}}


def test_one_bad_label_quarantines_only_its_row(tmp_path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,1,Crack,L1\nimages/b.png,maybe,,L1\nimages/c.png,0,,L1\n")
    table, where = ingest(data)
    # b.png is named by labels.csv: bad_label only, never also unlabelled
    assert where == {"images/a.png": "table", "images/b.png": BAD_LABEL, "images/c.png": "table"}
    assert table["label"].dtype == "int64" and table["label"].tolist() == [1, 0]


@pytest.mark.parametrize("text, label", [("1.0", 1), (" 1", 1), ("1 ", 1), ("0.0", 0), ("1", 1), ("0", 0)])
def test_integral_label_spellings_are_accepted(tmp_path, text, label):
    data = make_folder(tmp_path, HEADER + b"images/a.png,%s,,L1\nimages/b.png,maybe,,L1\n" % text.encode(),
                       images=("a", "b"))
    table, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": BAD_LABEL}
    assert table["label"].dtype == "int64" and table["label"].tolist() == [label]


@pytest.mark.parametrize("text", ["maybe", "", "  ", "0.5", "2", "-1", "nan", "true"])
def test_other_labels_are_bad_label(tmp_path, text):
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\nimages/b.png,%s,,L1\n" % text.encode(),
                       images=("a", "b"))
    table, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": BAD_LABEL}
    assert table["label"].tolist() == [0]


def test_repeated_row_is_kept_once_and_counted(tmp_path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,1,,L1\nimages/b.png,0,,L1\nimages/a.png,1.0,,L1\n",
                       images=("a", "b"))
    with pytest.warns(UserWarning, match="repeats 1 row"):
        table, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": "table"}
    assert table.attrs["repeated_rows"] == 1
    assert table["label"].tolist() == [1, 0]


def test_conflicting_labels_quarantine_the_image_once(tmp_path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\nimages/b.png,0,,L1\nimages/a.png,1,,L1\n",
                       images=("a", "b"))
    table, where = ingest(data)
    assert where == {"images/a.png": CONFLICTING_LABELS, "images/b.png": "table"}
    assert list(table["image"]) == ["images/b.png"]


@pytest.mark.parametrize("path", ["../x.png", "/etc/passwd", "images/../../x.png", "..\\x.png", "C:\\x.png"])
def test_paths_outside_the_folder_are_quarantined(tmp_path, path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\n%s,1,,L1\n" % path.encode(), images=("a",))
    Image.new("L", (8, 8)).save(tmp_path / "x.png")        # it exists, one level up: still refused
    table, where = ingest(data)
    assert where == {"images/a.png": "table", path.replace("\\", "/"): OUTSIDE_FOLDER}
    assert list(table["image"]) == ["images/a.png"]


def test_empty_image_cell_is_named_by_its_line(tmp_path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\n  ,1,Crack,L1\nimages/b.png,1,,L1\n",
                       images=("a", "b"))
    _, where = ingest(data)
    assert where == {"images/a.png": "table", "labels.csv:line 3": BAD_ROW, "images/b.png": "table"}


def test_surplus_fields_make_a_bad_row(tmp_path):
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\nimages/b.png,1,,L1,oops\nimages/c.png,1,,L1,\n")
    _, where = ingest(data)      # a trailing empty field (c) is a spreadsheet habit, not a problem
    assert where == {"images/a.png": "table", "images/b.png": BAD_ROW, "images/c.png": "table"}


def test_whitespace_and_windows_separators_in_paths(tmp_path):
    data = make_folder(tmp_path, HEADER + b" images\\a.png ,0,,L1\n./images/b.png,1,,L1\n", images=("a", "b"))
    table, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": "table"}
    assert list(table["image"]) == ["images/a.png", "images/b.png"]


def test_a_name_unicode_writes_two_ways_finds_its_file(tmp_path):
    import unicodedata

    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    data = make_folder(tmp_path, HEADER + f"images/{nfc}.png,1,,L1\nimages/b.png,0,,L1\n".encode(), images=(nfd, "b"))
    table, where = ingest(data)                 # labels.csv typed é, the file stores e + accent (macOS)
    assert where == {f"images/{nfd}.png": "table", "images/b.png": "table"}
    (data / "images" / f"{nfc}.png").write_bytes((data / "images" / f"{nfd}.png").read_bytes())
    table, where = ingest(data)                 # both forms on disk: each is its own file, as named
    assert where == {f"images/{nfc}.png": "table", f"images/{nfd}.png": "unlabelled", "images/b.png": "table"}


def test_bom_and_crlf(tmp_path):
    data = make_folder(tmp_path, b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n")
                       + b"images/a.png,1.0,Crack,L1\r\nimages/b.png,0,,L1\r\n\r\n", images=("a", "b"))
    table, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": "table"}
    assert list(table.columns) == ["image", "label", "defect_type", "lot"]
    assert table["label"].tolist() == [1, 0] and table["lot"].tolist() == ["L1", "L1"]


def test_non_utf8_bytes_quarantine_only_their_row(tmp_path):
    latin1 = "images/b.png,1,d\xe9faut,L1\n\xe9.png,0,,L1\n".encode("latin-1")
    data = make_folder(tmp_path, HEADER + b"images/a.png,0,,L1\n" + latin1 + b"images/c.png,1,,L1\n")
    _, where = ingest(data)
    assert where == {"images/a.png": "table", "images/b.png": BAD_ENCODING, "labels.csv:line 4": BAD_ENCODING,
                     "images/c.png": "table"}


def test_extra_columns_are_kept_as_text(tmp_path):
    data = make_folder(tmp_path, b"image,label,defect_type,lot,operator\n"
                                 b"images/a.png,1,Crack,L2611-0001,kim\nimages/b.png,0,,L2611-0001,\n",
                       images=("a", "b"))
    table, _ = ingest(data)
    assert list(table.columns) == ["image", "label", "defect_type", "lot", "operator"]
    assert table["defect_type"].iloc[0] == "Crack" and pd.isna(table["defect_type"].iloc[1])
    assert table["lot"].tolist() == ["L2611-0001", "L2611-0001"]


@pytest.mark.parametrize("content, named", [
    (b"img,label\nimages/a.png,1\n", "'img'"),
    (b"image,lbl\nimages/a.png,1\n", "'lbl'"),
    (b"image,label,label\nimages/a.png,1,0\n", "twice; found ['image', 'label', 'label']"),
    (b"", "it is empty"),
    (b"\xef\xbb\xbf\r\n\r\n", "it is empty"),
    (b'image,label\n"unclosed,0\nimages/a.png,1\n', "unexpected end of data"),
])
def test_unusable_header_is_a_clear_error(tmp_path, content, named):
    data = make_folder(tmp_path, content, images=("a",))
    with pytest.raises(DataError) as err:
        read_labels(data)
    assert str(data / "labels.csv") in str(err.value) and named in str(err.value)


def test_every_case_at_once(tmp_path):
    """One folder with every case: each input once, with its reason; a stray file is unlabelled."""
    rows = (b"images/a.png,1,Crack,L1\nimages/b.png,maybe,,L1\nimages/c.png,1,,L1\nimages/c.png,1,,L1\n"
            b"images/d.png,0,,L1\nimages/d.png,1,,L1\n../x.png,0,,L1\n,1,,L1\nimages/e.png,0,d\xe9faut,L1\n"
            b"images/gone.png,0,,L1\n")
    data = make_folder(tmp_path, HEADER + rows, images=("a", "b", "c", "d", "e", "stray"))
    with pytest.warns(UserWarning):
        table, where = ingest(data)
    assert where == {
        "images/a.png": "table", "images/b.png": BAD_LABEL, "images/c.png": "table",
        "images/d.png": CONFLICTING_LABELS, "../x.png": OUTSIDE_FOLDER, "labels.csv:line 9": BAD_ROW,
        "images/e.png": BAD_ENCODING, "images/gone.png": MISSING_IMAGE, "images/stray.png": UNLABELLED,
    }
    assert table["label"].dtype == "int64" and table["label"].tolist() == [1, 1]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_header_separated_otherwise_says_to_save_with_commas(tmp_path, sep):
    data = make_folder(tmp_path, sep.join(["image", "label", "lot"]).encode() + b"\nimages/a.png" + sep.encode()
                       + b"1" + sep.encode() + b"L1\n")
    with pytest.raises(DataError, match=rf"its header looks separated by {re.escape(repr(sep))}.*save it with commas"):
        read_labels(data)


def test_a_missing_column_in_a_comma_separated_header_gives_no_separator_hint(tmp_path):
    with pytest.raises(DataError, match=r"lacks the columns \['label'\]; found \['image', 'defect', 'lot'\]$"):
        read_labels(make_folder(tmp_path, b"image,defect,lot\nimages/a.png,1,L1\n"))
