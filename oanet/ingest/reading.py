"""What the recogniser reads for each field of one decoded image.

Fast path: a field with a line box is cut to its value and unit (see crops.py) and
recognised in a batch with every other crop. General path: fields without a box are
found by CnOCR's text detector on the panel and matched by their printed key.
"""
from __future__ import annotations

import numpy as np

from oanet.ingest.crops import ink_mask, pad_to_width, value_span
from oanet.ingest.engine import Ocr
from oanet.ingest.parse import parse_read
from oanet.layout import Field, Layout

MIN_CROP_WIDTH = 32
CROP_RULES_VERSION = 5   # bump when crop rules change: it is part of the cache key

Reads = list  # one [text, score] or None per layout field, in layout order


def line_crop(image: np.ndarray, field: Field, pad: int) -> np.ndarray:
    x0, y0, x1, y1 = field.roi
    h, w = image.shape
    return image[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)]


def unit_is_droppable(field: Field) -> bool:
    """A float printed with fixed decimals: cut short, it no longer parses, so a cut is safe."""
    return bool(field.unit) and field.dtype == "float" and field.decimals is not None


def value_crop(image: np.ndarray, field: Field, pad: int) -> np.ndarray | None:
    """The crop to recognise for a boxed field: value and unit, the whole line as fallback.

    None when the box holds no text at all.
    """
    line = line_crop(image, field, pad)
    mask = ink_mask(line)
    if mask is None:
        return None
    span = value_span(mask, drop_unit=unit_is_droppable(field))
    crop = line if span is None else line[:, span[0]:span[1]]
    return pad_to_width(np.ascontiguousarray(crop), MIN_CROP_WIDTH)


def boxed_crops(image: np.ndarray, layout: Layout, pad: int) -> list[np.ndarray | None]:
    return [value_crop(image, f, pad) if f.roi is not None else None for f in layout.fields]


def panel_only(image: np.ndarray, layout: Layout) -> np.ndarray:
    """The image with its object box filled by the background, so detection sees only text."""
    x0, y0, x1, y1 = layout.object_roi
    out = image.copy()
    out[y0:y1, x0:x1] = int(np.median(image[:y0 or None, :]))
    return out


def find_by_key(layout: Layout, reads) -> dict[str, list]:
    """Match detected lines to unboxed fields by the key they start with."""
    found: dict[str, list] = {}
    for f in layout.fields:
        if f.roi is not None:
            continue
        key = f.key.upper()
        for r in reads:
            text = r.text.strip()
            if text.upper().startswith(key) and text[len(key):len(key) + 1] in (":", ";", " ", ".", ""):
                found.setdefault(f.name, [text, r.score])
    return found


def _pair(read) -> list:
    return [read.text, read.score]


def retry_whole_lines(ocr: Ocr, images, layout: Layout, reads: list[Reads], pad: int, batch_size: int) -> None:
    """Re-read the whole line of any boxed field whose value crop did not parse.

    Noise can hide the gap after the key, so the cut lands after the value and the
    crop holds only the unit. Rare, so a second small batch is cheap; the whole-line
    read replaces the first only when it parses.
    """
    todo = [(i, j) for i, r in enumerate(reads) for j, f in enumerate(layout.fields)
            if f.roi is not None and r[j] is not None and parse_read(f, *r[j], 0.0).reason is not None]
    lines = [np.ascontiguousarray(line_crop(images[i], layout.fields[j], pad)) for i, j in todo]
    for (i, j), read in zip(todo, ocr.recognize(lines, batch_size=batch_size)):
        if parse_read(layout.fields[j], read.text, read.score, 0.0).reason is None:
            reads[i][j] = _pair(read)


def read_images(ocr: Ocr, images: list[np.ndarray], layout: Layout, pad: int, batch_size: int) -> list[Reads]:
    """Reads for each image: boxed fields in one recogniser batch, the rest by detection."""
    per_image = [boxed_crops(img, layout, pad) for img in images]
    flat = [c for crops in per_image for c in crops if c is not None]
    texts = iter(ocr.recognize(flat, batch_size=batch_size))
    out: list[Reads] = [[None if c is None else _pair(next(texts)) for c in crops] for crops in per_image]
    retry_whole_lines(ocr, images, layout, out, pad, batch_size)
    if any(f.roi is None for f in layout.fields):
        for img, reads in zip(images, out):
            by_key = find_by_key(layout, ocr.detect_and_recognize(panel_only(img, layout)))
            reads[:] = [by_key.get(f.name) if f.roi is None else r for f, r in zip(layout.fields, reads)]
    return out
