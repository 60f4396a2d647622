"""A value printed as one character is read right, with real OCR: alone in its crop, a DejaVu 7 read
1 at 0.99 (stored wrong, past the second read) and a mono 0 read 日 (bench/one_glyph.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oanet.config import IngestConfig
from oanet.ingest.parse import parse_read
from oanet.ingest.reading import line_crop, value_crop
from oanet.layout import Field

pytestmark = pytest.mark.slow


def drawn(font_name: str, size: int, text: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A light panel strip with `text` on it, and a line box around the text."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font_name), size)
    width = int(font.getlength(text)) + 60
    img = Image.new("L", (width + 40, size * 3), 235)
    ImageDraw.Draw(img).text((20, size), text, fill=20, font=font)
    return np.asarray(img), (14, size - 4, width + 20, int(size * 2.3))


@pytest.fixture(scope="module")
def ocr():
    from oanet.ingest.engine import Ocr

    return Ocr()


@pytest.mark.parametrize("font_name, size", [("DejaVuSans.ttf", 14), ("DejaVuSansMono.ttf", 14),
                                             ("DejaVuSansMono.ttf", 20)])
def test_one_digit_values_read_as_printed(ocr, font_name, size):
    cfg = IngestConfig()
    cases = []
    for key, sep, digit in (("Station", ": ", "7"), ("Lane", " ", "0"), ("Cam", " = ", "7"), ("Lane", " ", "3")):
        image, box = drawn(font_name, size, f"{key}{sep}{digit}")
        cases.append((image, Field(name=key.lower(), key=key, dtype="int", roi=box), digit))
    reads = ocr.recognize([value_crop(image, field, cfg.crop_pad) for image, field, _ in cases])
    checks = ocr.recognize([np.ascontiguousarray(line_crop(image, field, cfg.crop_pad)) for image, field, _ in cases])
    for (_, field, digit), read, check in zip(cases, reads, checks, strict=True):
        parsed = parse_read(field, read.text, read.score, cfg.min_confidence,
                            check.text if read.score < cfg.verify_below else None)
        assert parsed.value == int(digit), (field.key, digit, read, parsed)
