"""Cut a printed `KEY: VALUE UNIT` line down to `VALUE UNIT` before recognition.

Recognition time grows with crop width (the recogniser resizes every crop to 48 px
high), so reading only the value and unit instead of the whole 220 px line box is
what makes the fast path fast. The key's end is the first wide gap in the line's
ink: a space is wider than any gap inside a key (measured on the panel font:
docs/benchmarks.md, "Measurements behind the ingest design").
"""
from __future__ import annotations

import numpy as np

MIN_CONTRAST = 24.0     # ink must differ from the background by this many gray levels
INK_LEVEL = 0.4         # share of the strongest deviation that counts as ink
MARGIN = 3              # pixels kept around the value
SEPARATOR_WIDTH = 1.2   # a separator (`-` `:` `=` `->`) is at most this many line ink heights wide
SEPARATOR_HEIGHT = 0.62  # and at most this share of the line's ink height tall (digits and capitals are ~1)
DOT_HEIGHT = 0.3        # or two runs of ink rows at most this share tall each: a colon (an i's stem is ~0.55)
FULL_HEIGHT = 0.95      # a column inked over this share of the crop's height, at either end, is a box edge
EDGE_SHOULDER = 3       # columns cut beyond an edge: the faint rest of its blur (text that near an edge is cut)
ONE_GLYPH = 0.9         # a value at most this many line ink heights wide is one character (two digits are ~1.1)


def ink_mask(line: np.ndarray) -> np.ndarray | None:
    """Boolean (h, w) mask of text pixels, or None when the crop holds no text.

    A box drawn to the panel's edge holds a strip of what lies beyond it: columns "inked" from
    top to bottom at either end of the crop. No printed character fills a line box's height, so
    those are not text; left in, the strip was read as the value (`Humidity 43 %` read `1`)."""
    left, right = 0, line.shape[1]
    for _ in range(4):      # the edge set the contrast: without it, its blurred shoulder shows next
        mask = _deviation_mask(line[:, left:right]) if right > left else None
        if mask is None:
            return None
        share = mask.mean(axis=0)
        cut_left, cut_right = _edge_band(share, left > 0), _edge_band(share[::-1], right < line.shape[1])
        if cut_left == cut_right == 0:
            break
        left, right = left + cut_left, right - cut_right
    out = np.zeros(line.shape[:2], dtype=bool)
    out[:, left:right] = mask
    return out


def _edge_band(share: np.ndarray, beside_edge: bool) -> int:
    """How many columns from the start are a box edge: the run inked over half the height (a blurred
    edge has shoulders), if a column in it is inked over FULL_HEIGHT, or if an edge was just cut off
    on this side (`beside_edge`: what is left is its shoulder); then EDGE_SHOULDER more. Else 0."""
    run = int(np.argmin(share >= 0.5)) if not (share >= 0.5).all() else share.size
    edge = run and (beside_edge or share[:run].max() >= FULL_HEIGHT)
    return min(share.size, run + EDGE_SHOULDER) if edge else 0


def _deviation_mask(line: np.ndarray) -> np.ndarray | None:
    background = np.median(line)
    dev = np.abs(line.astype(np.float32) - background)
    peak = float(dev.max()) if dev.size else 0.0
    if peak < MIN_CONTRAST:
        return None
    return dev > INK_LEVEL * peak


def key_gap_threshold(ink_height: int) -> int:
    return max(5, int(np.ceil(0.4 * ink_height)))


def unit_gap_threshold(ink_height: int) -> int:
    return max(3, int(np.ceil(0.3 * ink_height)))


def value_span(mask: np.ndarray, drop_unit: bool = False) -> tuple[int, int] | None:
    """Columns [x0, x1) of the value (and unit), given a line's ink mask; None without a key gap.

    With `drop_unit` the last word after the value is cut off too: the unit is known from
    the layout, and reading it costs time. The gap before a unit can be as narrow as a
    gap inside a number, so this is only safe where a number cut short cannot parse
    (floats with fixed decimals); the caller re-reads the whole line when it does not.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:   # no ink at all: no key, no value
        return None
    gaps = np.diff(cols) - 1
    wide = np.flatnonzero(gaps >= key_gap_threshold(int(rows[-1] - rows[0] + 1)))
    if wide.size == 0:
        return None
    first = _skip_separator(mask, cols, wide, int(rows[-1] - rows[0] + 1))
    start = int(cols[wide[first] + 1])
    end = int(cols[-1])
    if drop_unit:
        unit_gaps = np.flatnonzero(gaps[wide[first] + 1:] >= unit_gap_threshold(int(rows[-1] - rows[0] + 1)))
        if unit_gaps.size:
            end = int(cols[wide[first] + 1 + unit_gaps[-1]])
    return max(0, start - MARGIN), min(mask.shape[1], end + 1 + MARGIN)


def one_glyph(mask: np.ndarray, span: tuple[int, int]) -> bool:
    """True when the value `span` (value_span's columns of the line's ink `mask`) holds one character.

    Alone in its crop, a digit has no neighbours to tell the recogniser its size and style: on
    DejaVu panels a lone 7 read 1 at 0.99 and a 0 read 日 (bench/one_glyph.py). The whole line reads
    them right, so value_crop sends the line instead."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask[:, span[0]:span[1]].any(axis=0))
    return bool(cols.size) and bool(cols[-1] - cols[0] + 1 <= ONE_GLYPH * (rows[-1] - rows[0] + 1))


def _skip_separator(mask: np.ndarray, cols: np.ndarray, wide: np.ndarray, ink_height: int) -> int:
    """Index into `wide` of the gap the value starts after: 0, or 1 when the word after the key
    is a separator with spaces on both sides (`TEMP - 1124.7`, `Line : B1`, `T -> 3`): narrow,
    and short as no digit or capital is, or two dots one above the other (a colon, as tall as a
    lower-case letter; a monospaced font sets `Station: 8` with a key gap before its colon).

    The recogniser often drops the space after such a separator and reads `-1124.7`, a
    negative number; the ink shows the space, so the separator is cut off here.
    """
    if wide.size < 2:
        return 0
    x0, x1 = cols[wide[0] + 1], cols[wide[1]] + 1
    inked = mask[:, x0:x1].any(axis=1)
    rows = np.flatnonzero(inked)
    narrow = x1 - x0 <= SEPARATOR_WIDTH * ink_height
    short = rows.size and rows[-1] - rows[0] + 1 <= SEPARATOR_HEIGHT * ink_height
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], inked.astype(np.int8), [0])))))[::2]
    dots = runs.size == 2 and runs.max() <= DOT_HEIGHT * ink_height
    return 1 if narrow and (short or dots) else 0


def pad_with_background(crop: np.ndarray, left: int, right: int) -> np.ndarray:
    """Columns of the crop's median gray (its background) added on either side; (h, w[, c])."""
    if left == right == 0:
        return crop
    pad = ((0, 0), (left, right)) + ((0, 0),) * (crop.ndim - 2)
    return np.pad(crop, pad, mode="constant", constant_values=int(np.median(crop)))


def pad_to_width(crop: np.ndarray, min_width: int) -> np.ndarray:
    """Very short values (one digit) are padded with background: CTC needs a few columns."""
    extra = max(0, min_width - crop.shape[1])
    return pad_with_background(crop, extra // 2, extra - extra // 2)
