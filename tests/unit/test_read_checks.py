"""The second read of a doubtful value (reading.confirm_doubtful): which reads get one, and of what."""
from __future__ import annotations

import numpy as np

from oanet.ingest.engine import Read
from oanet.ingest.parse import UNCONFIRMED, parse_stored
from oanet.ingest.reading import confirm_doubtful
from oanet.synth.aoi_layout import aoi_v1_layout

LAYOUT = aoi_v1_layout()
INDEX = {f.name: j for j, f in enumerate(LAYOUT.fields)}


class LineReader:
    """Stands in for the recogniser: remembers the crops it was given, reads each as `text`."""

    def __init__(self, text: str):
        self.text, self.crops = text, []

    def recognize(self, crops, batch_size=64):
        self.crops += crops
        return [Read(self.text, 0.99) for _ in crops]


def test_only_a_doubtful_read_that_parses_is_read_again_from_its_whole_line():
    reads = [None] * len(LAYOUT.fields)
    reads[INDEX["gray_mean"]] = ["13.6", 0.85]            # doubtful and parses: checked
    reads[INDEX["sinter_temp_c"]] = ["1124.7 C", 0.99]    # confident: left alone
    reads[INDEX["press_mpa"]] = ["4x.1", 0.85]             # does not parse: nothing to confirm
    reads[INDEX["dark_pct"]] = ["2.10 %", 0.6]            # low confidence, but it parses: checked too
    ocr = LineReader("MEAN: 133.6")
    all_reads = [reads]
    confirm_doubtful(ocr, [np.zeros((480, 640), np.uint8)], [LAYOUT], all_reads, pad=2, batch_size=8,
                     verify_below=0.95)
    mean = LAYOUT.fields[INDEX["gray_mean"]]
    x0, y0, x1, y1 = mean.roi
    assert ocr.crops[0].shape == (y1 - y0 + 4, x1 - x0 + 4)            # the whole line box, padded
    assert len(ocr.crops) == 2
    assert reads[INDEX["gray_mean"]] == ["13.6", 0.85, "MEAN: 133.6"]
    assert parse_stored(mean, reads[INDEX["gray_mean"]], 0.8).reason == UNCONFIRMED
    assert reads[INDEX["sinter_temp_c"]] == ["1124.7 C", 0.99] and reads[INDEX["press_mpa"]] == ["4x.1", 0.85]


def test_nothing_is_read_again_when_the_check_is_off():
    reads = [[["13.6", 0.85] if f.name == "gray_mean" else None for f in LAYOUT.fields]]
    ocr = LineReader("MEAN: 133.6")
    confirm_doubtful(ocr, [np.zeros((480, 640), np.uint8)], [LAYOUT], reads, pad=2, batch_size=8, verify_below=0.0)
    assert ocr.crops == [] and reads[0][INDEX["gray_mean"]] == ["13.6", 0.85]
