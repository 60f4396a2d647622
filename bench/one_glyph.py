"""Values printed as one character (`Station: 7`, `Lane 0`, `Shift = B`): read from the value crop
alone, as ingest did up to CROP_RULES_VERSION 12, and from the whole line, as value_crop now does
when the value is one character (crops.one_glyph).

    python bench/one_glyph.py [--sizes 12,14,20,28]

Draws each value after three kinds of key, in five of matplotlib's bundled fonts and each size,
reads both crops in one run with the same engine, and applies ingest's own rules to each read
(ingest.min_confidence; the second, whole-line read of a value under ingest.verify_below): right,
missing and WRONG (a value that is not the printed one), and the recognition seconds side by side.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans-Bold.ttf", "STIXGeneral.ttf")
KEYS = (("Station", ": "), ("Lane", " "), ("CAM", " = "))
VALUES = tuple("0123456789") + tuple("ABCDE")


def draw(size: int, font_name: str, key: str, sep: str, value: str):
    """(line image, field) for one printed line; the field's box holds the line with a margin."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    from oanet.layout import Field

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font_name), size)
    text = f"{key}{sep}{value}"
    width = int(font.getlength(text)) + 60
    img = Image.new("L", (width + 40, size * 3), 235)
    ImageDraw.Draw(img).text((20, size), text, fill=20, font=font)
    kind = {"dtype": "int"} if value.isdigit() else {"dtype": "category", "categories": VALUES[10:]}
    return np.asarray(img), Field(name=key.lower(), key=key, roi=(14, size - 4, width + 20, int(size * 2.3)), **kind)


def value_only(image, field, pad):
    """The crop ingest read up to CROP_RULES_VERSION 12: the value, however short."""
    from oanet.ingest.crops import ink_mask, value_span
    from oanet.ingest.reading import MIN_CROP_WIDTH, line_crop, pad_to_width

    line = line_crop(image, field, pad)
    span = value_span(ink_mask(line))
    return pad_to_width(np.ascontiguousarray(line if span is None else line[:, span[0]:span[1]]), MIN_CROP_WIDTH)


def score(ocr, cases, crops, cfg) -> tuple[dict, float, list]:
    """Counts of right/missing/wrong under ingest's rules, the seconds, and the wrong reads."""
    from oanet.ingest.parse import parse_read
    from oanet.ingest.reading import line_crop

    start = time.perf_counter()
    reads = ocr.recognize(crops)
    seconds = time.perf_counter() - start
    lines = ocr.recognize([np.ascontiguousarray(line_crop(img, f, cfg.crop_pad)) for img, f, _ in cases])
    counts, wrong = {"right": 0, "missing": 0, "WRONG": 0}, []
    for (_, field, printed), read, line in zip(cases, reads, lines, strict=True):
        check = line.text if read.score < cfg.verify_below else None
        parsed = parse_read(field, read.text, read.score, cfg.min_confidence, check)
        truth = float(printed) if field.dtype == "int" else printed
        outcome = "missing" if parsed.value is None else "right" if parsed.value == truth else "WRONG"
        counts[outcome] += 1
        if outcome == "WRONG":
            wrong.append(f"{field.key} {printed!r} read {read.text!r} at {read.score:.3f}")
    return counts, seconds, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12,14,20,28", help="cap sizes in px, comma-separated")
    args = parser.parse_args()

    from oanet.config import IngestConfig
    from oanet.ingest.engine import Ocr
    from oanet.ingest.reading import value_crop

    cfg, ocr = IngestConfig(), Ocr()
    cases = [(*draw(int(size), font, key, sep, v), v) for size in args.sizes.split(",") for font in FONTS
             for key, sep in KEYS for v in VALUES]
    results = {"value crop (before)": score(ocr, cases, [value_only(i, f, cfg.crop_pad) for i, f, _ in cases], cfg),
               "line when one glyph (now)": score(ocr, cases, [value_crop(i, f, cfg.crop_pad) for i, f, _ in cases],
                                                  cfg)}
    print(f"{len(cases)} one-character values ({len(FONTS)} fonts, sizes {args.sizes} px, {len(KEYS)} key styles)")
    print(f"{'crop':28} {'right':>6} {'missing':>8} {'WRONG':>6} {'seconds':>8}")
    for name, (counts, seconds, _) in results.items():
        print(f"{name:28} {counts['right']:6d} {counts['missing']:8d} {counts['WRONG']:6d} {seconds:8.2f}")
    before, now = (results[k][1] for k in results)
    print(f"recognition time, now / before: {now / before:.2f}x")
    for name, (_, _, wrong) in results.items():
        for line in wrong[:12]:
            print(f"  WRONG with {name}: {line}")


if __name__ == "__main__":
    main()
