"""`oanet layout preview`: the contact sheet of what ingest reads, on a small generated set, real OCR."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from oanet.config import IngestConfig
from oanet.ingest import preview as pv
from oanet.ingest.parse import NOT_FOUND, UNPARSED
from oanet.layout import load_layout

N = 3


def edited_layout(synth_set, tmp_path, edit):
    """The set's layout with `edit(fields by name)` applied, saved beside the test; its path."""
    raw = yaml.safe_load((synth_set / "layout.yaml").read_text())
    edit({f["name"]: f for f in raw["fields"]})
    path = tmp_path / "layout.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def clean_preview(synth_set, ocr, tmp_path_factory):
    out = tmp_path_factory.mktemp("preview") / "sheet.png"
    layout = load_layout(synth_set / "layout.yaml")
    return layout, pv.preview(synth_set, layout, IngestConfig(), n=N, out=out, ocr=ocr)


def test_sheet_has_one_cell_per_image_and_field(clean_preview):
    layout, result = clean_preview
    g = result.geometry
    assert (g.rows, g.columns, g.bands) == (N, len(layout.fields), 1)
    with Image.open(result.out) as im:
        assert im.size == (g.row_header_w + g.columns * g.cell_w, g.header_h + g.rows * g.cell_h)
        pixels = np.asarray(im.convert("L"))
    for row in range(g.rows):
        for index in range(len(layout.fields)):
            x0, y0, x1, y1 = g.cell_box(row, index)
            assert pixels[y0:y1, x0:x1].std() > 0, (row, layout.fields[index].name)


def test_records_are_what_ingest_reads(clean_preview, synth_set, truth):
    layout, result = clean_preview
    first = list(pd.read_csv(synth_set / "labels.csv")["image"][:N])
    assert result.images == first and result.skipped == []
    assert [(c.image, c.field) for c in result.cells] == [(i, f.name) for i in first for f in layout.fields]
    assert all(c.source == pv.BOXED and c.crop is not None for c in result.cells)
    # the generated set reads exactly: nearly every cell parses, to the printed value
    assert sum(c.reason is None for c in result.cells) >= len(result.cells) - 1
    printed = truth.set_index("image")
    fields = {f.name: f for f in layout.fields}
    for c in result.cells:
        if c.reason is None:
            f = fields[c.field]
            shown = f.format_value(c.value) if f.dtype in ("float", "int") else c.value
            assert shown == printed.loc[c.image, c.field], c
    assert [(s.field, s.total) for s in result.fields] == [(f.name, N) for f in layout.fields]
    assert "parsed" in result.summary() and str(result.out) in result.summary()


def test_a_box_off_its_text_fails_that_field(synth_set, ocr, tmp_path):
    def shift(fields):   # into the empty band under its line: at most a sliver of the next one
        x0, y0, x1, y1 = fields["sinter_temp_c"]["roi"]
        fields["sinter_temp_c"]["roi"] = [x0, y0 + 31, x1, y1 + 31]

    layout = load_layout(edited_layout(synth_set, tmp_path, shift))
    result = pv.preview(synth_set, layout, IngestConfig(), n=N, out=tmp_path / "s.png", ocr=ocr)
    mine = [c for c in result.cells if c.field == "sinter_temp_c"]
    assert len(mine) == N and all(c.reason in (NOT_FOUND, UNPARSED) for c in mine)
    summary = next(s for s in result.fields if s.field == "sinter_temp_c")
    assert summary.parsed == 0 and sum(summary.reasons.values()) == N
    assert set(summary.reasons) <= {NOT_FOUND, UNPARSED}
    others = [c for c in result.cells if c.field != "sinter_temp_c"]
    assert sum(c.reason is None for c in others) >= len(others) - 1
    assert "sinter_temp_c" in result.summary()


def test_a_box_holding_another_fields_line_is_warned_of(synth_set, ocr, tmp_path, clean_preview):
    """gain_db's box moved onto exposure_ms's line, as when a panel leaves a field out and the lines
    below move up: ingest reads only the value, 11.8, which fits gain's format and range."""
    def onto_exposure(fields):
        fields["gain_db"]["roi"] = fields["exposure_ms"]["roi"]

    layout = load_layout(edited_layout(synth_set, tmp_path, onto_exposure))
    result = pv.preview(synth_set, layout, IngestConfig(), n=N, out=tmp_path / "s.png", ocr=ocr)
    gain = next(s for s in result.fields if s.field == "gain_db")
    assert gain.other_lines == {"exposure_ms": N}
    assert all(c.other_line == "exposure_ms" for c in result.cells if c.field == "gain_db")
    assert "WARNING gain_db: its box holds the line of exposure_ms (3 of 3 images)" in result.summary()
    assert not any(c.other_line for c in result.cells if c.field != "gain_db")
    assert not any(c.other_line for c in clean_preview[1].cells) and "WARNING" not in clean_preview[1].summary()


@pytest.mark.parametrize("text, held", [("Temp3: 1131.8 C", "temp3"), ("Temp2: 1131.8 C", None),
                                        ("Temp12: 1131.8 C", "temp12"), ("lemp3: 1131.8 C", None),
                                        ("1131.8 C", None)])
def test_holds_other_line_names_the_field_a_whole_line_read_belongs_to(text, held):
    from oanet.layout import Field, Layout

    fields = tuple(Field(name=k.lower(), key=k, roi=(0, 30 * i, 200, 30 * i + 24)) for i, k in
                   enumerate(["Temp1", "Temp2", "Temp3", "Temp12"]))
    layout = Layout(name="t", size=(640, 480), object_roi=(300, 0, 640, 480), fields=fields)
    assert pv.holds_other_line(layout, fields[1], text) == held


def test_unboxed_fields_are_found_by_key(synth_set, ocr, truth, tmp_path):
    def unbox(fields):
        for name in ("gain_db", "sinter_temp_c"):
            del fields[name]["roi"]

    layout = load_layout(edited_layout(synth_set, tmp_path, unbox))
    result = pv.preview(synth_set, layout, IngestConfig(), n=1, out=tmp_path / "s.png", ocr=ocr)
    keyed = {c.field: c for c in result.cells if c.source == pv.BY_KEY}
    assert set(keyed) == {"gain_db", "sinter_temp_c"}
    image = result.images[0]
    for name, cell in keyed.items():
        f = next(f for f in layout.fields if f.name == name)
        assert cell.reason is None and cell.text, cell       # read from the value crop of the matched line
        assert f.format_value(cell.value) == truth.set_index("image").loc[image, name]
        assert cell.crop is not None and cell.crop.shape[0] < 60   # one detected line, not the panel
    assert {s.field: s.source for s in result.fields}["gain_db"] == pv.BY_KEY


def test_cli_lists_bad_images_as_skipped(synth_set, ocr, tmp_path, monkeypatch):
    from oanet.cli import app

    data = tmp_path / "aoi"
    (data / "images").mkdir(parents=True)
    labels = pd.read_csv(synth_set / "labels.csv").iloc[:2]
    for name in labels["image"]:
        shutil.copy(synth_set / name, data / name)
    Image.new("L", (64, 48), 128).save(data / "images" / "small.png")
    bad = labels.iloc[:1].assign(image="images/small.png")
    pd.concat([bad, labels]).to_csv(data / "labels.csv", index=False)
    shutil.copy(synth_set / "layout.yaml", data / "layout.yaml")
    monkeypatch.setattr(pv, "build_ocr", lambda cfg, layout: ocr)   # the session's engine: same settings

    out = tmp_path / "sheet.png"
    res = CliRunner().invoke(app, ["layout", "preview", "--data", str(data), "--n", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 images, 13 fields" in res.output
    assert "skipped images/small.png: wrong_size" in res.output
    assert f"sheet: {out}" in res.output and out.is_file()


def test_sheet_wraps_many_fields_into_bands():
    g = pv.sheet_geometry(rows=2, fields=20, with_skipped=False)
    assert (g.columns, g.bands) == (pv.MAX_COLUMNS, 2)
    assert g.cell_box(1, 16)[1] == g.title_h + g.band_h + g.column_header_h + g.cell_h
    assert g.cell_box(1, 19)[3] <= g.height and g.cell_box(0, 15)[2] == g.width



def test_texts_and_reasons_equal_the_ingest_table(clean_preview, ingest_run):
    _, result = clean_preview
    table = ingest_run.table.set_index("image")
    got = [(c.image, c.field, c.text, c.reason) for c in result.cells]
    want = [(c.image, c.field, table.loc[c.image, f"{c.field}__text"],
             None if pd.isna(r := table.loc[c.image, f"{c.field}__reason"]) else r) for c in result.cells]
    assert got == want
