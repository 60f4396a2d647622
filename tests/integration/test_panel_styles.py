"""OCR on panels it was not written for: every style of the corpus, three ways.

Each style (oanet/synth/styles/: fonts, polarity, separators, key punctuation, unit
placement, canvas, RGB/JPEG, noise) is rendered and ingested with its layout's line
boxes, by keys only (CnOCR's detector), and with the layout `oanet layout suggest`
drafts from three of its images, unedited. A few units per style keep this to about a
minute; bench/ocr_styles.py measures the same on 100 units per style.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from oanet.config import IngestConfig, SynthConfig
from oanet.ingest.accuracy import overall, score_fields
from oanet.layout import load_layout
from oanet.synth.styles import STYLES

pytestmark = pytest.mark.slow
N_UNITS = 6


def ingest_and_score(data, layout_path, tmp_path, n_images=None) -> dict:
    from oanet.ingest.stage import run

    folder = data
    if n_images is not None:                      # a smaller folder: the keys-only path detects every panel
        folder = tmp_path / f"first{n_images}"
        folder.mkdir(exist_ok=True)
        labels = pd.read_csv(data / "labels.csv").head(n_images)
        labels.to_csv(folder / "labels.csv", index=False)
        for name in labels["image"]:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).symlink_to(data / name)
    out = tmp_path / f"{layout_path.stem}.parquet"
    run(IngestConfig(cache=None), folder, out, tmp_path / f"{layout_path.stem}_q.parquet", layout_path=layout_path)
    truth = pd.read_csv(data / "truth.csv", dtype=str, keep_default_na=False)
    return overall(score_fields(pd.read_parquet(out), truth, load_layout(layout_path), load_layout(data / "layout.yaml")))


@pytest.mark.parametrize("style", STYLES)
def test_every_style_reads_with_boxes_by_keys_and_with_a_suggested_layout(style, tmp_path):
    from oanet.ingest.engine import Ocr
    from oanet.ingest.suggest import suggest
    from oanet.synth.stage import run as synth

    data = tmp_path / "data"
    synth(dataclasses.replace(SynthConfig(), n=N_UNITS, seed=5, style=style), data, progress=False)
    layout = load_layout(data / "layout.yaml")

    boxes = ingest_and_score(data, data / "layout.yaml", tmp_path)
    assert boxes["exact"] >= 0.98 and boxes["wrong"] == 0, boxes

    keys_only = tmp_path / "keys_only.yaml"
    layout.without_boxes().save(keys_only)
    keys = ingest_and_score(data, keys_only, tmp_path, n_images=2)
    assert keys["exact"] >= 0.96 and keys["wrong"] == 0, keys

    images = sorted((data / "images").iterdir())[:3]
    draft = suggest(images, Ocr(), progress=False)
    assert len(draft.fields) == len(layout.fields), [f.key for f in draft.fields]
    suggested = tmp_path / "suggested.yaml"
    draft.save(suggested)
    drafted = ingest_and_score(data, suggested, tmp_path)
    assert drafted["exact"] >= 0.95 and drafted["wrong"] <= 1 / drafted["fields"], drafted
