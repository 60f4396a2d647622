"""Panels set the ways oanet's synthesiser never sets them (its legibility rules keep each field on a
line of its own, its value right after its key), drawn here with Pillow:

- two fields on one line (`Temp: 1127.4 C  Press: 45.40 MPa`, `X: -4.59  Y: 3.25`): CnOCR's detector
  reads such a line as one, and the keys-only path and `layout suggest` must cut it at the keys
  (reading.split_at_keys, suggest.printed_fields);
- a table: keys in one column, values in another far to the right (`Pressure ....... 45.40 MPa`):
  the detector reads key and value apart, and they must be joined (reading.merge_fragments);
- tiles: a small key over its large value, two tiles a row (reading.stack_values)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from oanet.config import IngestConfig
from oanet.ingest.accuracy import overall, score_fields
from oanet.layout import load_layout

pytestmark = pytest.mark.slow
FIELDS = [{"name": "temp", "key": "Temp", "unit": "C", "decimals": 1, "range": [900, 1300]},
          {"name": "press", "key": "Press", "unit": "MPa", "decimals": 2, "range": [0, 100]},
          {"name": "x", "key": "X", "decimals": 2, "range": [-10, 10]},
          {"name": "y", "key": "Y", "decimals": 2, "range": [-10, 10]},
          {"name": "speed", "key": "Speed", "unit": "m/s", "decimals": 1, "range": [0, 10]}]


TILE_KEYS = {"X": "X pos", "Y": "Y pos"}


def draw(out, n: int = 6, gap: int = 8, kind: str = "two_a_line"):
    """two_a_line: two fields a line, `gap` px apart (about half a character), one detected line each;
    table: each field a row, its value 260 px right of where its key starts; tiles: a 17 px key over
    its 26 px value in a bordered box, two boxes a row (CnOCR's detector misses a lone 14 px `Y`)."""
    from PIL import Image, ImageDraw, ImageFont

    from oanet.synth.panel import font_file

    font, rng = ImageFont.truetype(str(font_file("dejavu-sans")), 18), np.random.default_rng(0)
    small, bold = (ImageFont.truetype(str(font_file(f)), size) for f, size in (("dejavu-sans", 17), ("dejavu-sans", 26)))
    (out / "images").mkdir(parents=True)
    fields = [{**f, "key": TILE_KEYS.get(f["key"], f["key"])} if kind == "tiles" else f for f in FIELDS]
    labels, truth = [], []
    for i in range(n):
        v = {"temp": f"{rng.uniform(1000, 1200):.1f}", "press": f"{rng.uniform(40, 60):.2f}",
             "x": f"{rng.uniform(-5, 5):.2f}", "y": f"{rng.uniform(-5, 5):.2f}", "speed": f"{rng.uniform(1, 9):.1f}"}
        img = Image.new("L", (640, 400), 20)
        ink = ImageDraw.Draw(img)
        img.paste(Image.fromarray(rng.normal(128, 20, (200, 200)).clip(0, 255).astype(np.uint8)), (10, 190))
        if kind == "tiles":
            for k, f in enumerate(fields):
                x, y = 230 + 200 * (k % 2), 10 + 80 * (k // 2)
                ink.rectangle((x, y, x + 190, y + 72), outline=200)
                ink.text((x + 8, y + 6), f["key"], font=small, fill=200)
                ink.text((x + 8, y + 30), f"{v[f['name']]} {f.get('unit', '')}".strip(), font=bold, fill=240)
        elif kind == "table":
            for k, f in enumerate(FIELDS):
                ink.text((230, 15 + 36 * k), f["key"], font=font, fill=230)
                ink.text((490, 15 + 36 * k), f"{v[f['name']]} {f.get('unit', '')}".strip(), font=font, fill=230)
        else:
            for y, line in ((20, f"Temp: {v['temp']} C"), (60, f"X: {v['x']}"), (100, f"Speed: {v['speed']} m/s")):
                ink.text((230, y), line, font=font, fill=230)
            for y, line, after in ((20, f"Press: {v['press']} MPa", f"Temp: {v['temp']} C"),
                                   (60, f"Y: {v['y']}", f"X: {v['x']}")):
                ink.text((230 + ink.textlength(after, font=font) + gap, y), line, font=font, fill=230)
        name = f"images/u{i:03d}.png"
        img.save(out / name)
        labels.append({"image": name, "label": i % 2, "lot": f"L{i // 3}"})
        truth.append({"image": name, **v})
    pd.DataFrame(labels).to_csv(out / "labels.csv", index=False)
    pd.DataFrame(truth).to_csv(out / "truth.csv", index=False)
    (out / "layout.yaml").write_text(yaml.safe_dump({"name": "two-a-line", "size": [640, 400],
                                                     "object_roi": [0, 180, 220, 400], "fields": fields}))
    return out


def read_and_score(data, layout_path, tmp_path) -> dict:
    from oanet.ingest.stage import run

    out = tmp_path / f"{layout_path.stem}.parquet"
    run(IngestConfig(cache=None), data, out, tmp_path / f"{layout_path.stem}_q.parquet", layout_path=layout_path)
    truth = pd.read_csv(data / "truth.csv", dtype=str, keep_default_na=False)
    return overall(score_fields(pd.read_parquet(out), truth, load_layout(layout_path), load_layout(data / "layout.yaml")))


# kind -> what the draft's boxes must be; the old code read each kind by keys at 20%, 0% and 0%,
# and could draft no table or tiles at all
DRAFT_BOXES = {
    "two_a_line": lambda f: (f.roi is None) == (f.key != "Speed"),   # a shared line: found by key, no box
    "table": lambda f: f.roi is not None and f.roi[2] > 490,         # the box holds key and far value
    "tiles": lambda f: f.roi is not None,
}


@pytest.mark.parametrize("kind", DRAFT_BOXES)
def test_each_layout_kind_reads_by_key_and_by_a_suggested_layout(kind, tmp_path):
    from oanet.ingest.engine import Ocr
    from oanet.ingest.suggest import suggest

    data = draw(tmp_path / "data", kind=kind)
    by_key = read_and_score(data, data / "layout.yaml", tmp_path)
    assert by_key["exact"] == 1.0, by_key

    draft = suggest(sorted((data / "images").iterdir())[:3], Ocr(), progress=False)
    assert {f.key for f in draft.fields} == {f.key for f in load_layout(data / "layout.yaml").fields}
    assert all(DRAFT_BOXES[kind](f) for f in draft.fields), [(f.key, f.roi) for f in draft.fields]
    draft.save(tmp_path / "suggested.yaml")
    drafted = read_and_score(data, tmp_path / "suggested.yaml", tmp_path)
    assert drafted["exact"] == 1.0, drafted
